// Package worker is the core the credentials and memory workers share, so that the checks
// that make them safe are written once: the X-Aws-* credential headers, the strict body
// decoder, the cap checks in their fixed order, the chain checks, the S3 calls made with
// the caller's own temporary credentials, the v2 envelope, and the hashes-only audit log.
//
// A worker package (credworker, memworker) describes each of its routes with a [Route]:
// the op and data class its caps must carry, how chain failures are named, and the work
// to do once every check has passed. [New] takes the routes, and [Core.Handler] serves them
// through the shared pipeline.
//
// The S3 key always comes from the signed cap payload, never from the request body, and
// the S3 call always runs with the caller's credentials (unless the worker was explicitly
// allowed its own), so that a stolen cap is stopped by the caller's IAM policy rather
// than by the worker's good behaviour.
package worker
