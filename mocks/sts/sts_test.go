package sts_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/sts"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// issuer stands in for the broker's OIDC side: a JWKS endpoint and a signing key, so the
// stub is tested on its own contract without the broker.
type issuer struct {
	key *ecdsa.PrivateKey
	kid string
	url string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	is := &issuer{key: key, kid: "oidc-test-1"}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pub := is.key.PublicKey
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": is.kid, "use": "sig", "alg": "ES256",
			"x": base64.RawURLEncoding.EncodeToString(pub.X.FillBytes(make([]byte, 32))),
			"y": base64.RawURLEncoding.EncodeToString(pub.Y.FillBytes(make([]byte, 32))),
		}}})
	}))
	t.Cleanup(srv.Close)
	is.url = srv.URL
	return is
}

// claims returns OIDC claims shaped as the broker mints them for actor.
func claims(actor omni.Omni, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":                   "http://broker.test",
		"sub":                   "agentkeys:agent:" + actor.String(),
		"aud":                   wire.AudienceSTS,
		"iat":                   now.Unix(),
		"exp":                   now.Add(300 * time.Second).Unix(),
		"agentkeys_actor_omni":  actor.String(),
		"agentkeys_user_wallet": "0x1111111111111111111111111111111111111111",
		wire.TagsClaim: map[string]any{
			"principal_tags": map[string]any{
				"agentkeys_user_wallet": []string{"0x1111111111111111111111111111111111111111"},
				wire.TagActorOmni:       []string{actor.String()},
			},
			"transitive_tag_keys": []string{"agentkeys_user_wallet", wire.TagActorOmni},
		},
	}
}

func (is *issuer) sign(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = is.kid
	s, err := tok.SignedString(is.key)
	require.NoError(t, err)
	return s
}

type env struct {
	minio  *minioserver.Server
	is     *issuer
	url    string
	client *agent.STS
	s3     *agent.S3
	offset atomic.Int64 // seconds the stub's clock runs ahead
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{minio: minioserver.StartTB(t), is: newIssuer(t)}
	e.url = e.startStub(t, e.is.url)
	e.client = &agent.STS{URL: e.url}
	e.s3 = &agent.S3{Endpoint: e.minio.Endpoint}
	return e
}

// startStub starts a stub over e's MinIO that reads the JWKS at jwksURL, and returns its
// URL.
func (e *env) startStub(t *testing.T, jwksURL string) string {
	t.Helper()
	stub, err := sts.New(sts.Config{
		MinIOEndpoint:   e.minio.Endpoint,
		ParentAccessKey: e.minio.RootUser,
		ParentSecretKey: e.minio.RootPassword,
		VaultBucket:     e.minio.VaultBucket,
		MemoryBucket:    e.minio.MemoryBucket,
		JWKSURL:         jwksURL,
		Now: func() time.Time {
			return time.Now().Add(time.Duration(e.offset.Load()) * time.Second)
		},
	})
	require.NoError(t, err)
	srv := httptest.NewServer(stub.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func testOmni(label string) omni.Omni {
	o, err := omni.Agent(omni.Master("0x1111111111111111111111111111111111111111"), label, 0)
	if err != nil {
		panic("sts_test: " + err.Error())
	}
	return o
}

// requireRefusal asserts that err is a refusal of exactly code and status.
func requireRefusal(t *testing.T, err error, status int, code string) {
	t.Helper()
	var r *refusal.Refusal
	require.ErrorAs(t, err, &r, "want a refusal, got %v", err)
	assert.Equal(t, code, r.Code, "code (%s)", r.Message)
	assert.Equal(t, status, r.Status, "status (%s)", r.Message)
}

func TestIssuedCredentialsAreScopedToOwnPrefix(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a, b := testOmni("alice"), testOmni("bob")
	jwtA := e.is.sign(t, claims(a, time.Now()))

	vault, err := e.client.AssumeRole(ctx, wire.DefaultVaultRoleARN, jwtA, "alice", 0)
	require.NoError(t, err)
	memory, err := e.client.AssumeRole(ctx, wire.DefaultMemoryRoleARN, jwtA, "alice", 0)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), vault.Expiration, 5*time.Minute)

	roles := []struct {
		name        string
		creds       agent.STSCreds
		bucket      string
		otherBucket string
		class       string
	}{
		{"vault", vault, e.minio.VaultBucket, e.minio.MemoryBucket, "credentials"},
		{"memory", memory, e.minio.MemoryBucket, e.minio.VaultBucket, "memory"},
	}
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			own := "bots/" + a.String() + "/" + r.class + "/"
			other := "bots/" + b.String() + "/" + r.class + "/"
			body := []byte("payload of " + r.name)

			// Positive controls: the same credentials work on their own prefix.
			require.NoError(t, e.s3.Put(ctx, r.creds, r.bucket, own+"x.enc", body))
			got, err := e.s3.Get(ctx, r.creds, r.bucket, own+"x.enc")
			require.NoError(t, err)
			assert.Equal(t, body, got)
			keys, err := e.s3.List(ctx, r.creds, r.bucket, own)
			require.NoError(t, err)
			assert.Equal(t, []string{own + "x.enc"}, keys)

			// B's object exists, put there with root credentials.
			root, err := e.minio.Client()
			require.NoError(t, err)
			_, err = root.PutObject(ctx, r.bucket, other+"x.enc", strings.NewReader("b's"), 3,
				minio.PutObjectOptions{})
			require.NoError(t, err)

			denied := map[string]error{
				"put other prefix": e.s3.Put(ctx, r.creds, r.bucket, other+"y.enc", body),
				"delete other":     e.s3.Delete(ctx, r.creds, r.bucket, other+"x.enc"),
				"put bots root":    e.s3.Put(ctx, r.creds, r.bucket, "bots/x.enc", body),
				"put bucket root":  e.s3.Put(ctx, r.creds, r.bucket, "x.enc", body),
				"put other class": e.s3.Put(ctx, r.creds, r.bucket,
					"bots/"+a.String()+"/x/y", body),
				"put other bucket": e.s3.Put(ctx, r.creds, r.otherBucket, own+"x.enc", body),
				"put sibling omni": e.s3.Put(ctx, r.creds, r.bucket,
					"bots/"+a.String()+"0/x", body),
				"get other prefix":  errOf(e.s3.Get(ctx, r.creds, r.bucket, other+"x.enc")),
				"get other bucket":  errOf(e.s3.Get(ctx, r.creds, r.otherBucket, own+"x.enc")),
				"list other prefix": errOf(e.s3.List(ctx, r.creds, r.bucket, other)),
				"list bots":         errOf(e.s3.List(ctx, r.creds, r.bucket, "bots/")),
				"list no prefix":    errOf(e.s3.List(ctx, r.creds, r.bucket, "")),
				"list other bucket": errOf(e.s3.List(ctx, r.creds, r.otherBucket, own)),
			}
			for name, err := range denied {
				t.Run(name, func(t *testing.T) {
					requireRefusal(t, err, http.StatusForbidden, "AccessDenied")
				})
			}

			// B's object is untouched by the refused delete.
			obj, err := root.GetObject(ctx, r.bucket, other+"x.enc", minio.GetObjectOptions{})
			require.NoError(t, err)
			defer obj.Close()
			st, err := obj.Stat()
			require.NoError(t, err)
			assert.EqualValues(t, 3, st.Size)
		})
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	a := testOmni("alice")
	now := time.Now()
	good := e.is.sign(t, claims(a, now))

	other := newIssuer(t)
	otherKid := *e.is
	otherKid.kid = "unknown-kid"

	mutate := func(f func(jwt.MapClaims)) string {
		c := claims(a, now)
		f(c)
		return e.is.sign(t, c)
	}

	cases := []struct {
		name   string
		role   string
		token  string
		status int
		code   string
	}{
		{"tampered payload", wire.DefaultVaultRoleARN, tamper(good), 400,
			sts.CodeInvalidIdentityToken},
		{"signed by another key", wire.DefaultVaultRoleARN, other.sign(t, claims(a, now)), 400,
			sts.CodeInvalidIdentityToken},
		{"unknown kid", wire.DefaultVaultRoleARN, otherKid.sign(t, claims(a, now)), 400,
			sts.CodeInvalidIdentityToken},
		{"wrong audience", wire.DefaultVaultRoleARN,
			mutate(func(c jwt.MapClaims) { c["aud"] = "agentkeys:broker" }), 400,
			sts.CodeInvalidIdentityToken},
		{"untagged", wire.DefaultVaultRoleARN,
			mutate(func(c jwt.MapClaims) { delete(c, wire.TagsClaim) }), 400,
			sts.CodeInvalidIdentityToken},
		{"non-canonical tag", wire.DefaultVaultRoleARN, mutate(func(c jwt.MapClaims) {
			principal := c[wire.TagsClaim].(map[string]any)["principal_tags"]
			principal.(map[string]any)[wire.TagActorOmni] = []string{"0x" + a.String()}
		}), 400, sts.CodeInvalidIdentityToken},
		// Two actors would leave the stub to pick whose prefix to grant.
		{"two actor tags", wire.DefaultVaultRoleARN, mutate(func(c jwt.MapClaims) {
			principal := c[wire.TagsClaim].(map[string]any)["principal_tags"]
			principal.(map[string]any)[wire.TagActorOmni] = []string{a.String(),
				testOmni("bob").String()}
		}), 400, sts.CodeInvalidIdentityToken},
		{"empty actor tag", wire.DefaultVaultRoleARN, mutate(func(c jwt.MapClaims) {
			principal := c[wire.TagsClaim].(map[string]any)["principal_tags"]
			principal.(map[string]any)[wire.TagActorOmni] = []string{}
		}), 400, sts.CodeInvalidIdentityToken},
		{"expired", wire.DefaultVaultRoleARN,
			mutate(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), 400,
			sts.CodeExpiredToken},
		{"no expiry", wire.DefaultVaultRoleARN,
			mutate(func(c jwt.MapClaims) { delete(c, "exp") }), 400, sts.CodeInvalidIdentityToken},
		{"unknown role", "arn:aws:iam::000000000000:role/admin", good, 403, sts.CodeAccessDenied},
		{"not a jwt", wire.DefaultVaultRoleARN, "not-a-jwt", 400, sts.CodeInvalidIdentityToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.AssumeRole(t.Context(), tc.role, tc.token, "alice", 0)
			requireRefusal(t, err, tc.status, tc.code)
		})
	}

	// The positive control: the untouched token works for both roles.
	for _, role := range []string{wire.DefaultVaultRoleARN, wire.DefaultMemoryRoleARN} {
		_, err := e.client.AssumeRole(t.Context(), role, good, "alice", 0)
		require.NoError(t, err, role)
	}
}

func TestStubClockExpiresToken(t *testing.T) {
	e := newEnv(t)
	token := e.is.sign(t, claims(testOmni("alice"), time.Now()))

	_, err := e.client.AssumeRole(t.Context(), wire.DefaultVaultRoleARN, token, "alice", 0)
	require.NoError(t, err)

	e.offset.Store(301)
	_, err = e.client.AssumeRole(t.Context(), wire.DefaultVaultRoleARN, token, "alice", 0)
	requireRefusal(t, err, 400, sts.CodeExpiredToken)
}

func TestDurationSecondsIsHonoured(t *testing.T) {
	e := newEnv(t)
	token := e.is.sign(t, claims(testOmni("alice"), time.Now()))

	creds, err := e.client.AssumeRole(t.Context(), wire.DefaultVaultRoleARN, token, "alice",
		900*time.Second)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(900*time.Second), creds.Expiration, time.Minute)

	_, err = e.client.AssumeRole(t.Context(), wire.DefaultVaultRoleARN, token, "alice",
		899*time.Second)
	requireRefusal(t, err, 400, sts.CodeValidation)
}

// TestMalformedRequests posts forms the SDK would not build. Each is refused with the
// AWS code for what is wrong, beside the same form made whole, which is answered.
func TestMalformedRequests(t *testing.T) {
	e := newEnv(t)
	token := e.is.sign(t, claims(testOmni("alice"), time.Now()))
	form := func(edit func(url.Values)) url.Values {
		v := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
			"RoleArn": {wire.DefaultVaultRoleARN}, "RoleSessionName": {"alice"},
			"WebIdentityToken": {token}, "DurationSeconds": {"900"}}
		edit(v)
		return v
	}
	without := func(k string) url.Values { return form(func(v url.Values) { v.Del(k) }) }
	with := func(k, val string) url.Values { return form(func(v url.Values) { v.Set(k, val) }) }

	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"well formed", form(func(url.Values) {}), http.StatusOK, ""},
		{"no action", without("Action"), 400, sts.CodeInvalidAction},
		{"other action", with("Action", "AssumeRole"), 400, sts.CodeInvalidAction},
		{"no role", without("RoleArn"), 400, sts.CodeMissingParameter},
		{"no session name", without("RoleSessionName"), 400, sts.CodeMissingParameter},
		{"no token", without("WebIdentityToken"), 400, sts.CodeMissingParameter},
		{"session name of one character", with("RoleSessionName", "a"), 400,
			sts.CodeValidation},
		{"session name with a slash", with("RoleSessionName", "a/b"), 400,
			sts.CodeValidation},
		{"duration not a number", with("DurationSeconds", "abc"), 400, sts.CodeValidation},
		{"duration too short", with("DurationSeconds", "899"), 400, sts.CodeValidation},
		{"duration too long", with("DurationSeconds", "43201"), 400, sts.CodeValidation},
		{"bad parameter beats bad token", form(func(v url.Values) {
			v.Set("RoleSessionName", "a")
			v.Set("WebIdentityToken", "not-a-jwt")
		}), 400, sts.CodeValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.PostForm(e.url+"/", tc.form)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, "text/xml", resp.Header.Get("Content-Type"))
			var answer struct {
				Error struct {
					Code string `xml:"Code"`
				} `xml:"Error"`
			}
			require.NoError(t, xml.NewDecoder(resp.Body).Decode(&answer))
			assert.Equal(t, tc.code, answer.Error.Code)
		})
	}
}

// TestSessionNameAndDuration takes RoleSessionName and DurationSeconds to the edges of
// what AWS allows. Inside them MinIO must issue credentials, so that no value the stub
// lets through can come back as the stub's 5xx; outside them the stub refuses with
// ValidationError before it calls MinIO.
func TestSessionNameAndDuration(t *testing.T) {
	e := newEnv(t)
	token := e.is.sign(t, claims(testOmni("alice"), time.Now()))
	every := strings.Repeat("aZ9_+=,.@-", 7)[:64]

	cases := []struct {
		name     string
		session  string
		duration time.Duration
		code     string
	}{
		{"two characters", "ab", 0, ""},
		{"64 characters, every kind allowed", every, 0, ""},
		{"shortest duration", "alice", 900 * time.Second, ""},
		{"longest duration", "alice", 43200 * time.Second, ""},
		{"one character", "a", 0, sts.CodeValidation},
		{"65 characters", every + "a", 0, sts.CodeValidation},
		{"space", "a b", 0, sts.CodeValidation},
		{"colon", "a:b", 0, sts.CodeValidation},
		{"slash", "a/b", 0, sts.CodeValidation},
		{"letter outside ASCII", "\u00e9t\u00e9", 0, sts.CodeValidation},
		{"NUL", "a\x00b", 0, sts.CodeValidation},
		{"duration below 900", "alice", 899 * time.Second, sts.CodeValidation},
		{"duration above 43200", "alice", 43201 * time.Second, sts.CodeValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.AssumeRole(t.Context(), wire.DefaultVaultRoleARN, token,
				tc.session, tc.duration)
			if tc.code == "" {
				assert.NoError(t, err)
				return
			}
			requireRefusal(t, err, http.StatusBadRequest, tc.code)
		})
	}
}

// TestJWKSUnavailable points stubs at a broker JWKS they cannot fetch or use. The token
// is good, so the answer is IDPCommunicationError, not a refusal of the token; the same
// token at a stub with the right JWKS is the control.
func TestJWKSUnavailable(t *testing.T) {
	e := newEnv(t)
	token := e.is.sign(t, claims(testOmni("alice"), time.Now()))
	serve := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
			_ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	_, err := e.client.AssumeRole(t.Context(), wire.DefaultVaultRoleARN, token, "alice", 0)
	require.NoError(t, err, "control: the same token with the right JWKS")

	cases := []struct {
		name string
		url  string
	}{
		{"broker down", down.URL},
		{"server error", serve(http.StatusInternalServerError, `{"error":"x"}`)},
		{"not JSON", serve(http.StatusOK, `<html>`)},
		{"key of another type", serve(http.StatusOK,
			`{"keys":[{"kty":"RSA","kid":"`+e.is.kid+`","n":"AQAB","e":"AQAB"}]}`)},
		{"point off the curve", serve(http.StatusOK, `{"keys":[{"kty":"EC","crv":"P-256",`+
			`"kid":"`+e.is.kid+`","x":"AQ","y":"AQ"}]}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := &agent.STS{URL: e.startStub(t, tc.url)}
			_, err := client.AssumeRole(t.Context(), wire.DefaultVaultRoleARN, token,
				"alice", 0)
			requireRefusal(t, err, http.StatusBadRequest, sts.CodeIDPCommunication)
		})
	}
}

// tamper flips one character of the payload segment, keeping it valid base64url.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	p := []byte(parts[1])
	if p[10] == 'A' {
		p[10] = 'B'
	} else {
		p[10] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}
