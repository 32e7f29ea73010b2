// Package policy builds the inline session policy the STS stub hands to MinIO's
// AssumeRole. It is the MinIO form of the upstream bucket policy keyed on the
// agentkeys_actor_omni principal tag: MinIO has no session tags, so each agent's
// credentials carry a policy naming its own prefix instead.
package policy

import (
	"encoding/json"
	"fmt"

	"github.com/agentkeys/harness/protocol/omni"
)

// MaxSize is the largest session policy MinIO accepts, in bytes.
const MaxSize = 2048

// Role is one of the two STS roles.
type Role string

const (
	// Vault is the credentials role: class "credentials" on the vault bucket.
	Vault Role = "vault"
	// Memory is the memory role: class "memory" on the memory bucket.
	Memory Role = "memory"
)

// DataClass is the key segment after the omni that a role may touch.
func (r Role) DataClass() string {
	if r == Vault {
		return "credentials"
	}
	return string(r)
}

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one IAM policy statement.
type Statement struct {
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// Prefix is the key prefix role may use for o: bots/<omni>/<class>/, always with the
// trailing slash so that one omni is never a prefix of another's keys.
func Prefix(r Role, o omni.Omni) string {
	return "bots/" + o.String() + "/" + r.DataClass() + "/"
}

// For builds the document that limits a session to role's class under o's prefix in
// bucket.
func For(r Role, bucket string, o omni.Omni) Document {
	prefix := Prefix(r, o)
	return Document{
		Version: "2012-10-17",
		Statement: []Statement{
			{
				Effect:   "Allow",
				Action:   []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
				Resource: []string{"arn:aws:s3:::" + bucket + "/" + prefix + "*"},
			},
			{
				Effect:   "Allow",
				Action:   []string{"s3:ListBucket"},
				Resource: []string{"arn:aws:s3:::" + bucket},
				Condition: map[string]map[string]string{
					"StringLike": {"s3:prefix": prefix + "*"},
				},
			},
		},
	}
}

// Build returns the compact JSON of the session policy for role, bucket and o. It fails
// when the result exceeds MaxSize, because MinIO would refuse it.
func Build(r Role, bucket string, o omni.Omni) ([]byte, error) {
	if r != Vault && r != Memory {
		return nil, fmt.Errorf("build session policy: unknown role %q", r)
	}
	if o.IsZero() {
		return nil, fmt.Errorf("build session policy: zero omni")
	}
	return Encode(For(r, bucket, o))
}

// Encode serializes a document compactly and enforces MaxSize.
func Encode(d Document) ([]byte, error) {
	out, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("build session policy: %w", err)
	}
	if len(out) > MaxSize {
		return nil, fmt.Errorf("build session policy: %d bytes exceeds MinIO's limit of %d",
			len(out), MaxSize)
	}
	return out, nil
}
