package workertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/childproc"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/policy"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// RunWithMinIO is the body of a worker package's TestMain: it starts one MinIO for the
// whole package, sets *shared to it, runs the tests and closes the server. Tests can
// share it because each makes its own identities and so never meets another's prefix.
func RunWithMinIO(m *testing.M, shared **minioserver.Server) int {
	// The first run on a machine builds MinIO, which takes minutes, not seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := minioserver.Start(ctx, minioserver.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "workertest:", err)
		return 1
	}
	defer srv.Close()
	*shared = srv
	return m.Run()
}

// Env is one worker over a real MinIO, served over HTTP, with a broker key and a chain
// of its own, so that tests sharing a MinIO share nothing else.
type Env struct {
	MinIO *minioserver.Server
	// Role is the worker's role; Bucket is that role's bucket on MinIO.
	Role   policy.Role
	Bucket string
	Chain  *chain.Memory
	Broker *Broker
	// URL is the worker's base URL, and Client calls it as the agent does.
	URL    string
	Client *agent.Worker
	// Root reaches past IAM with MinIO's root credentials.
	Root *minio.Client
}

// NewEnv builds a worker with newWorker (credworker.New or memworker.New) for role's
// bucket on srv and serves it until the test ends.
func NewEnv[W interface{ Handler() http.Handler }](tb testing.TB, srv *minioserver.Server,
	role policy.Role, newWorker func(worker.Config) (W, error)) *Env {
	tb.Helper()
	e := &Env{MinIO: srv, Role: role, Bucket: bucketOf(srv, role), Chain: chain.NewMemory(),
		Broker: NewBroker()}
	w, err := newWorker(worker.Config{
		Endpoint:  srv.Endpoint,
		Bucket:    e.Bucket,
		KEK:       envelope.NewKEK(),
		BrokerKey: e.Broker.Public(),
		Chain:     e.Chain,
		Logger:    Logger(tb),
	})
	require.NoError(tb, err)
	ts := httptest.NewServer(w.Handler())
	tb.Cleanup(ts.Close)
	e.URL, e.Client = ts.URL, &agent.Worker{URL: ts.URL}

	e.Root, err = srv.Client()
	require.NoError(tb, err)
	return e
}

// Creds are id's credentials for the env's role, as the STS stub would issue them.
func (e *Env) Creds(tb testing.TB, id omni.Omni) agent.STSCreds {
	tb.Helper()
	return AssumeRole(tb, e.MinIO, e.Role, id)
}

// Agent is an agent of a fresh master, with the agent's credentials for an env's role.
type Agent struct {
	Master *Identity
	Agent  *Identity
	Creds  agent.STSCreds
}

// NewAgent registers a fresh master and its agent under label on the env's chain.
func (e *Env) NewAgent(tb testing.TB, label string) Agent {
	tb.Helper()
	m := NewMaster(e.Chain)
	a := NewAgent(e.Chain, m, label)
	return Agent{Master: m, Agent: a, Creds: e.Creds(tb, a.Omni)}
}

// Raw reads the object at key in the env's bucket as root, past IAM, or returns nil when
// there is none.
func (e *Env) Raw(tb testing.TB, key string) []byte {
	tb.Helper()
	obj, err := e.Root.GetObject(tb.Context(), e.Bucket, key, minio.GetObjectOptions{})
	require.NoError(tb, err)
	defer obj.Close()
	body, err := io.ReadAll(obj)
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	require.NoError(tb, err)
	return body
}

func bucketOf(srv *minioserver.Server, role policy.Role) string {
	if role == policy.Memory {
		return srv.MemoryBucket
	}
	return srv.VaultBucket
}

// AssumeRole asks MinIO for credentials limited to id's prefix of role, with the session
// policy the STS stub would attach, but without a broker to mint an OIDC JWT first.
func AssumeRole(tb testing.TB, srv *minioserver.Server, role policy.Role,
	id omni.Omni) agent.STSCreds {
	tb.Helper()
	doc, err := policy.Build(role, bucketOf(srv, role), id)
	require.NoError(tb, err)
	arn := wire.DefaultVaultRoleARN
	if role == policy.Memory {
		arn = wire.DefaultMemoryRoleARN
	}
	client := sts.New(sts.Options{
		Region:       wire.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(srv.RootUser,
			srv.RootPassword, ""),
	})
	out, err := client.AssumeRole(tb.Context(), &sts.AssumeRoleInput{
		RoleArn:         aws.String(arn),
		RoleSessionName: aws.String("worker-test"),
		Policy:          aws.String(string(doc)),
		DurationSeconds: aws.Int32(3600),
	})
	require.NoError(tb, err, "minio assume role")
	return agent.STSCreds{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		Expiration:      aws.ToTime(out.Credentials.Expiration),
	}
}

// CredsHeader carries c in the X-Aws-* headers, every one of them even when empty.
func CredsHeader(c agent.STSCreds) http.Header {
	h := http.Header{}
	h.Set(wire.HeaderAccessKeyID, c.AccessKeyID)
	h.Set(wire.HeaderSecretAccessKey, c.SecretAccessKey)
	h.Set(wire.HeaderSessionToken, c.SessionToken)
	return h
}

// Post sends body as JSON to url with header, for requests the agent client would never
// build, and returns the answer with its body read.
func Post(tb testing.TB, url string, header http.Header, body []byte) (*http.Response,
	[]byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, url,
		bytes.NewReader(body))
	require.NoError(tb, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp, got
}

// ReasonOf decodes a worker's JSON error body, as Post returns it, and returns its
// reason, so a test compares the reason whole rather than searching the raw text.
func ReasonOf(tb testing.TB, raw []byte) string {
	tb.Helper()
	var b refusal.Body
	require.NoError(tb, json.Unmarshal(raw, &b), "error body %s", raw)
	return b.Reason
}

// AssertRefused requires err to carry a *refusal.Refusal and checks its status, reason
// and S3 code all at once, so a failure shows every field that differs.
func AssertRefused(tb testing.TB, err error, status int, reason, s3Code string) {
	tb.Helper()
	var r *refusal.Refusal
	require.True(tb, errors.As(err, &r), "want a refusal, got %v", err)
	assert.Equal(tb, status, r.Status, "status (%v)", r)
	assert.Equal(tb, reason, r.Reason, "reason (%v)", r)
	assert.Equal(tb, s3Code, r.Code, "s3 code (%v)", r)
}

// Logger routes a worker's lines to tb.Log, so only a failing test shows them. A
// benchmark prints all it logs, passing or not, so there the lines are dropped.
func Logger(tb testing.TB) *slog.Logger {
	if _, ok := tb.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return childproc.TBLogger(tb)
}
