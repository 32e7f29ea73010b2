// Package sts is the harness's stand-in for AWS STS AssumeRoleWithWebIdentity.
//
// It verifies the broker's OIDC JWT against the broker's JWKS, then asks MinIO's own
// AssumeRole for temporary credentials under an inline session policy that names the
// role's bucket and the token's actor omni only. Upstream enforces the prefix with a
// bucket policy on a principal tag; MinIO has no session tags, so the policy carries the
// omni instead and MinIO's policy engine does the refusing.
//
// Answers and errors are the AWS query-protocol XML that aws-sdk-go-v2's STS client
// parses unchanged.
package sts
