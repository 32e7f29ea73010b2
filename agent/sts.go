package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// STS exchanges OIDC JWTs for temporary credentials with aws-sdk-go-v2's own STS client,
// so the stub is held to the XML that real AWS clients parse.
type STS struct {
	// URL is the STS endpoint.
	URL string
	// HTTP is the transport; nil means DefaultHTTPClient.
	HTTP *http.Client
}

// AssumeRole calls AssumeRoleWithWebIdentity for roleARN with jwt. duration 0 leaves
// DurationSeconds out, so the endpoint's default applies.
func (s *STS) AssumeRole(ctx context.Context, roleARN, jwt, sessionName string,
	duration time.Duration) (STSCreds, error) {
	hc := s.HTTP
	if hc == nil {
		hc = DefaultHTTPClient
	}
	client := sts.New(sts.Options{
		Region:       wire.Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  aws.AnonymousCredentials{},
		HTTPClient:   hc,
		// A refusal is an answer to assert on, not a fault to retry.
		RetryMaxAttempts: 1,
	})

	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(roleARN),
		RoleSessionName:  aws.String(sessionName),
		WebIdentityToken: aws.String(jwt),
	}
	if duration > 0 {
		in.DurationSeconds = aws.Int32(int32(duration / time.Second))
	}
	out, err := client.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return STSCreds{}, fmt.Errorf("assume role with web identity: %w", AWSRefusal(err))
	}
	if out.Credentials == nil {
		return STSCreds{}, errors.New("assume role with web identity: answer has no credentials")
	}
	return STSCreds{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		Expiration:      aws.ToTime(out.Credentials.Expiration),
	}, nil
}

// AWSRefusal turns an API error of an aws-sdk-go-v2 call (S3 or STS) into a
// *refusal.Refusal with the HTTP status and error code. Any other error, a connection
// refused say, is returned as it is: it is not a refusal by the system under test.
func AWSRefusal(err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	r := &refusal.Refusal{Code: apiErr.ErrorCode(), Message: apiErr.ErrorMessage()}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		r.Status = respErr.HTTPStatusCode()
	}
	if r.Message == "" {
		r.Message = "aws error " + r.Code + " (HTTP " + strconv.Itoa(r.Status) + ")"
	}
	return r
}
