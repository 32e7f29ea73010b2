package wire

// The names a deployment gives its two storage roles and their buckets. Every component
// takes other names through its configuration and falls back to these, the upstream
// deployment's, so that a stack started with no settings agrees with itself. The account
// number in the ARNs is AWS's documentation placeholder: nothing checks it, only whole
// ARNs are compared.
const (
	DefaultVaultRoleARN  = "arn:aws:iam::000000000000:role/agentkeys-vault"
	DefaultMemoryRoleARN = "arn:aws:iam::000000000000:role/agentkeys-memory"
	DefaultVaultBucket   = "agentkeys-vault"
	DefaultMemoryBucket  = "agentkeys-memory"
)

// Region is the region every S3 and STS client signs for. SigV4 puts it into the
// signature, so the signer and MinIO must agree on it; it is the one MinIO answers for
// when MINIO_REGION is unset.
const Region = "us-east-1"
