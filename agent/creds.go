package agent

import "time"

// STSCreds are temporary S3 credentials from the STS exchange. The worker receives them
// in the X-Aws-* headers and writes through them, so the agent's own policy limits what
// the worker can do on its behalf.
type STSCreds struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}
