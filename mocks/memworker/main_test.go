package memworker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/memworker"
	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/policy"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// shared is one MinIO for the package. Every test makes its own identities, so no two
// tests touch the same prefix; a test that must see a bucket untouched starts its own.
var shared *minioserver.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := minioserver.Start(ctx, minioserver.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "memworker tests:", err)
		return 1
	}
	defer srv.Close()
	shared = srv
	return m.Run()
}

// env is a memory worker over a real MinIO with its own broker key and chain.
type env struct {
	srv    *minioserver.Server
	reg    *chain.Memory
	broker *workertest.Broker
	url    string
	client *agent.Worker
	root   *minio.Client
}

func newEnv(t testing.TB, srv *minioserver.Server) *env {
	t.Helper()
	reg := chain.NewMemory()
	b := workertest.NewBroker()
	w, err := memworker.New(worker.Config{
		Endpoint:  srv.Endpoint,
		Bucket:    srv.MemoryBucket,
		KEK:       envelope.NewKEK(),
		BrokerKey: b.Public(),
		Chain:     reg,
		Logger:    testLogger(t),
	})
	require.NoError(t, err)
	ts := httptest.NewServer(w.Handler())
	t.Cleanup(ts.Close)

	root, err := srv.Client()
	require.NoError(t, err)
	return &env{srv: srv, reg: reg, broker: b, url: ts.URL,
		client: &agent.Worker{URL: ts.URL}, root: root}
}

// memoryCreds asks MinIO for credentials limited to id's memory prefix, the way the STS
// stub does, without needing a broker to mint an OIDC JWT first.
func (e *env) memoryCreds(t testing.TB, id omni.Omni) agent.STSCreds {
	t.Helper()
	return assumeRole(t, e.srv, policy.Memory, e.srv.MemoryBucket, id)
}

func assumeRole(t testing.TB, srv *minioserver.Server, role policy.Role, bucket string,
	id omni.Omni) agent.STSCreds {
	t.Helper()
	doc, err := policy.Build(role, bucket, id)
	require.NoError(t, err)
	client := sts.New(sts.Options{
		Region:       wire.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(srv.RootUser,
			srv.RootPassword, ""),
	})
	out, err := client.AssumeRole(t.Context(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/agentkeys-" + string(role)),
		RoleSessionName: aws.String("worker-test"),
		Policy:          aws.String(string(doc)),
		DurationSeconds: aws.Int32(3600),
	})
	require.NoError(t, err, "minio assume role")
	return agent.STSCreds{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		Expiration:      aws.ToTime(out.Credentials.Expiration),
	}
}

// raw reads an object as root, past IAM, or returns nil when it does not exist.
func (e *env) raw(t testing.TB, bucket, key string) []byte {
	t.Helper()
	obj, err := e.root.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	body, err := io.ReadAll(obj)
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	require.NoError(t, err)
	return body
}

// refusalOf requires err to carry a *refusal.Refusal and returns it.
func refusalOf(t testing.TB, err error) *refusal.Refusal {
	t.Helper()
	var r *refusal.Refusal
	require.True(t, errors.As(err, &r), "want a refusal, got %v", err)
	return r
}

// post sends body to route as is, with the credentials headers of creds, for requests
// the agent client would never build.
func post(t testing.TB, url, route string, creds agent.STSCreds, body []byte) (*http.Response,
	[]byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+route,
		bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Aws-Access-Key-Id", creds.AccessKeyID)
	req.Header.Set("X-Aws-Secret-Access-Key", creds.SecretAccessKey)
	req.Header.Set("X-Aws-Session-Token", creds.SessionToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, got
}

// testLogger routes the worker's lines to t.Log, so only a failing test shows them. A
// benchmark prints everything it logs, so there the lines are dropped.
func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
