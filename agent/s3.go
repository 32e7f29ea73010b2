package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agentkeys/harness/protocol/wire"
)

// S3 makes direct S3 calls with an agent's temporary credentials: what an agent holding
// its STS credentials can do without any worker in between.
type S3 struct {
	// Endpoint is the S3 base URL.
	Endpoint string
	// HTTP is the transport; nil means DefaultHTTPClient.
	HTTP *http.Client
}

// NewS3Client returns a path-style client for endpoint with creds that sends checksums
// only when an operation requires them, as the workers' clients do.
func NewS3Client(endpoint string, creds STSCreds, hc *http.Client) *s3.Client {
	if hc == nil {
		hc = DefaultHTTPClient
	}
	return s3.New(s3.Options{
		Region:       wire.Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(
			creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
}

func (c *S3) client(creds STSCreds) *s3.Client { return NewS3Client(c.Endpoint, creds, c.HTTP) }

// Put writes body at bucket/key.
func (c *S3) Put(ctx context.Context, creds STSCreds, bucket, key string, body []byte) error {
	_, err := c.client(creds).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	})
	if err != nil {
		return fmt.Errorf("s3 put %s/%s: %w", bucket, key, AWSRefusal(err))
	}
	return nil
}

// Get reads bucket/key.
func (c *S3) Get(ctx context.Context, creds STSCreds, bucket, key string) ([]byte, error) {
	out, err := c.client(creds).GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
	})
	if err != nil {
		return nil, fmt.Errorf("s3 get %s/%s: %w", bucket, key, AWSRefusal(err))
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("s3 get %s/%s: read body: %w", bucket, key, err)
	}
	return body, nil
}

// Delete removes bucket/key.
func (c *S3) Delete(ctx context.Context, creds STSCreds, bucket, key string) error {
	_, err := c.client(creds).DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
	})
	if err != nil {
		return fmt.Errorf("s3 delete %s/%s: %w", bucket, key, AWSRefusal(err))
	}
	return nil
}

// List returns the keys under prefix in bucket; an empty prefix lists the whole bucket.
func (c *S3) List(ctx context.Context, creds STSCreds, bucket, prefix string) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(c.client(creds), in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3 list %s prefix %q: %w", bucket, prefix, AWSRefusal(err))
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}
