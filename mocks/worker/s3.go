package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/agentkeys/harness/protocol/wire"
)

// maxObject bounds what a Get reads. The largest envelope a worker writes comes from a
// 1 MiB body, so anything bigger was not written by a worker.
const maxObject = 2 << 20

// Bucket is the worker's bucket, seen through one caller's credentials. It is made per
// request: the credentials differ on every call, and so must the client that signs.
type Bucket struct {
	name   string
	client *s3.Client
}

// bucketFor builds the S3 client for creds. aws-sdk-go-v2 is the same SDK family as the
// upstream workers' S3 client, so signing, the session-token header and the error codes
// match; path-style addressing and checksums only when required are what MinIO and the
// contract ask for. Retries are off: a refusal is an answer, and a retried PUT would hide
// which attempt the worker reports.
func (c *Core) bucketFor(creds Credentials) Bucket {
	client := s3.New(s3.Options{
		Region:       wire.Region,
		BaseEndpoint: aws.String(c.cfg.Endpoint),
		UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(
			creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		HTTPClient:                 c.cfg.HTTPClient,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
	return Bucket{name: c.cfg.Bucket, client: client}
}

// Name is the bucket's name.
func (b Bucket) Name() string { return b.name }

// S3Error is a failed S3 call with the S3 error code, or wire.S3CodeRequestError when no
// S3 answer arrived.
type S3Error struct {
	Op         string
	Key        string
	Code       string
	HTTPStatus int
	Err        error
}

func (e *S3Error) Error() string {
	return fmt.Sprintf("s3 %s %s: %s: %v", e.Op, e.Key, e.Code, e.Err)
}

func (e *S3Error) Unwrap() error { return e.Err }

// Attempt is the wire form of the failure, for detail.attempts.
func (e *S3Error) Attempt(bucket, owner string) wire.S3Attempt {
	msg := e.Code
	var apiErr smithy.APIError
	if errors.As(e.Err, &apiErr) && apiErr.ErrorMessage() != "" {
		msg = apiErr.ErrorMessage()
	}
	return wire.S3Attempt{S3Code: e.Code, HTTPStatus: e.HTTPStatus, Bucket: bucket,
		S3Key: e.Key, Owner: owner, Message: msg}
}

func s3Error(op, key string, err error) *S3Error {
	e := &S3Error{Op: op, Key: key, Code: wire.S3CodeRequestError, Err: err}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode()
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		e.HTTPStatus = respErr.HTTPStatusCode()
	}
	return e
}

// Put writes body at key. Keys are deterministic, so a second store overwrites.
func (b Bucket) Put(ctx context.Context, key string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s3Timeout)
	defer cancel()
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.name),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		return s3Error("put", key, err)
	}
	return nil
}

// Get reads the object at key.
func (b Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s3Timeout)
	defer cancel()
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.name),
		Key:    aws.String(key),
	})
	if err != nil {
		return nil, s3Error("get", key, err)
	}
	defer out.Body.Close()

	body, err := io.ReadAll(io.LimitReader(out.Body, maxObject+1))
	if err != nil {
		return nil, s3Error("get", key, fmt.Errorf("read body: %w", err))
	}
	if len(body) > maxObject {
		return nil, s3Error("get", key,
			fmt.Errorf("object exceeds %d bytes, no worker wrote it", maxObject))
	}
	return body, nil
}

// List returns the keys under prefix.
func (b Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s3Timeout)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.name),
		Prefix: aws.String(prefix),
	})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Error("list", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}
