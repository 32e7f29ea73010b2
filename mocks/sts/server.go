package sts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/golang-jwt/jwt/v5"

	"github.com/agentkeys/harness/internal/fault"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/policy"
	"github.com/agentkeys/harness/protocol/wire"
)

// Duration bounds of AssumeRoleWithWebIdentity; MinIO refuses less than 900 s too.
const (
	minDuration     = 900
	maxDuration     = 43200
	defaultDuration = 3600
)

// Config configures a Stub.
type Config struct {
	// MinIOEndpoint is the base URL of the MinIO server that issues the credentials.
	MinIOEndpoint string
	// ParentAccessKey and ParentSecretKey are the stub's own MinIO credentials, the parent
	// of every session it issues. Each session is narrowed by its policy.
	ParentAccessKey string
	ParentSecretKey string
	// VaultBucket and MemoryBucket are the buckets of the two roles.
	VaultBucket  string
	MemoryBucket string
	// VaultRoleARN and MemoryRoleARN default to wire.DefaultVaultRoleARN and
	// wire.DefaultMemoryRoleARN.
	VaultRoleARN  string
	MemoryRoleARN string
	// JWKSURL is the broker's /.well-known/jwks.json.
	JWKSURL string
	// Now is the stub's clock for token expiry; tests move it to expire a token.
	Now func() time.Time
	// HTTP fetches the JWKS; nil means a client with a 10 s timeout.
	HTTP *http.Client
	// Logger receives one line per exchange; nil discards.
	Logger *slog.Logger
	// Faults selects known-bad behaviour for the mutation self-check. Zero is correct.
	Faults fault.Set
}

// Stub serves AssumeRoleWithWebIdentity.
type Stub struct {
	cfg   Config
	keys  *keySet
	minio *awssts.Client
	log   *slog.Logger
}

// New checks cfg and returns a Stub.
func New(cfg Config) (*Stub, error) {
	switch {
	case cfg.MinIOEndpoint == "":
		return nil, errors.New("new sts stub: MinIOEndpoint is required")
	case cfg.ParentAccessKey == "" || cfg.ParentSecretKey == "":
		return nil, errors.New("new sts stub: parent credentials are required")
	case cfg.VaultBucket == "" || cfg.MemoryBucket == "":
		return nil, errors.New("new sts stub: both buckets are required")
	case cfg.JWKSURL == "":
		return nil, errors.New("new sts stub: JWKSURL is required")
	}
	if cfg.VaultRoleARN == "" {
		cfg.VaultRoleARN = wire.DefaultVaultRoleARN
	}
	if cfg.MemoryRoleARN == "" {
		cfg.MemoryRoleARN = wire.DefaultMemoryRoleARN
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	client := awssts.New(awssts.Options{
		Region:       wire.Region,
		BaseEndpoint: aws.String(cfg.MinIOEndpoint),
		Credentials: credentials.NewStaticCredentialsProvider(
			cfg.ParentAccessKey, cfg.ParentSecretKey, ""),
		// One attempt under a short timeout: a hung MinIO must come back to the agent as
		// the stub's refusal naming MinIO, before the agent's own timeout hides it.
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 5 * time.Second},
	})
	return &Stub{
		cfg:   cfg,
		keys:  &keySet{url: cfg.JWKSURL, http: cfg.HTTP},
		minio: client,
		log:   log,
	}, nil
}

// Handler serves the STS query protocol at / and a health check at /healthz.
func (s *Stub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", s.serveAction)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true,"service":"sts"}`))
	})
	return mux
}

// awsFault is a refusal in AWS terms.
type awsFault struct {
	status  int
	code    string
	message string
}

func (f *awsFault) Error() string { return f.code + ": " + f.message }

func (s *Stub) serveAction(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, CodeValidation, "parse form: "+err.Error(), requestID)
		return
	}

	res, err := s.assume(r.Context(), r.PostForm)
	if err != nil {
		var f *awsFault
		if !errors.As(err, &f) {
			f = &awsFault{http.StatusInternalServerError, CodeUpstream, err.Error()}
		}
		s.log.Info("sts refused", "code", f.code, "message", f.message)
		writeError(w, f.status, f.code, f.message, requestID)
		return
	}

	resp := responseXML{Xmlns: xmlns, Result: res}
	resp.Metadata.RequestID = requestID
	writeXML(w, http.StatusOK, resp)
}

func (s *Stub) assume(ctx context.Context, form map[string][]string) (resultXML, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}

	if a := get("Action"); a != "AssumeRoleWithWebIdentity" {
		return resultXML{}, &awsFault{http.StatusBadRequest, CodeInvalidAction,
			fmt.Sprintf("action %q is not served here", a)}
	}
	for _, k := range []string{"RoleArn", "RoleSessionName", "WebIdentityToken"} {
		if get(k) == "" {
			return resultXML{}, &awsFault{http.StatusBadRequest, CodeMissingParameter,
				k + " is required"}
		}
	}
	// AWS checks the parameters before it looks at the token, and so does the stub: a
	// value MinIO would refuse must come back as the caller's ValidationError, never as
	// the stub's failure to get credentials.
	if err := checkSessionName(get("RoleSessionName")); err != nil {
		return resultXML{}, err
	}
	duration, err := parseDuration(get("DurationSeconds"))
	if err != nil {
		return resultXML{}, err
	}

	claims, err := s.verify(ctx, get("WebIdentityToken"))
	if err != nil {
		return resultXML{}, err
	}
	actor, err := actorTag(claims)
	if err != nil {
		return resultXML{}, err
	}
	role, bucket, err := s.role(get("RoleArn"))
	if err != nil {
		return resultXML{}, err
	}

	doc, err := s.sessionPolicy(role, bucket, actor)
	if err != nil {
		return resultXML{}, fmt.Errorf("assume role: %w", err)
	}
	out, err := s.minio.AssumeRole(ctx, &awssts.AssumeRoleInput{
		RoleArn:         aws.String(get("RoleArn")),
		RoleSessionName: aws.String(get("RoleSessionName")),
		Policy:          aws.String(string(doc)),
		DurationSeconds: aws.Int32(int32(duration)),
	})
	if err != nil {
		return resultXML{}, fmt.Errorf("minio assume role: %w", err)
	}

	sub, _ := claims.GetSubject()
	roleName := get("RoleArn")[strings.LastIndex(get("RoleArn"), "/")+1:]
	key := aws.ToString(out.Credentials.AccessKeyId)
	s.log.Info("sts issued", "role", role, "actor", actor.String(), "duration_s", duration)
	return resultXML{
		SubjectFromWebIdentityToken: sub,
		Audience:                    wire.AudienceSTS,
		Provider:                    "agentkeys",
		AssumedRoleUser: assumedRoleUserXML{
			Arn: "arn:aws:sts::000000000000:assumed-role/" + roleName + "/" +
				get("RoleSessionName"),
			AssumedRoleID: key + ":" + get("RoleSessionName"),
		},
		Credentials: credentialsXML{
			AccessKeyID:     key,
			SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
			SessionToken:    aws.ToString(out.Credentials.SessionToken),
			Expiration:      formatExpiration(aws.ToTime(out.Credentials.Expiration)),
		},
	}, nil
}

// sessionNameChars is AWS's pattern for the characters of a RoleSessionName.
var sessionNameChars = regexp.MustCompile(`^[\w+=,.@-]*$`)

// checkSessionName applies AWS's constraints on RoleSessionName: 2 to 64 characters of
// [\w+=,.@-]. The value is not echoed: it is the caller's, of any size.
func checkSessionName(v string) error {
	switch n := utf8.RuneCountInString(v); {
	case n < 2:
		return invalidParameter("roleSessionName",
			"Member must have length greater than or equal to 2")
	case n > 64:
		return invalidParameter("roleSessionName",
			"Member must have length less than or equal to 64")
	case !sessionNameChars.MatchString(v):
		return invalidParameter("roleSessionName",
			`Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	return nil
}

func parseDuration(v string) (int, error) {
	if v == "" {
		return defaultDuration, nil
	}
	d, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return 0, invalidParameter("durationSeconds", "Member must be an integer")
	case d < minDuration:
		return 0, invalidParameter("durationSeconds",
			fmt.Sprintf("Member must have value greater than or equal to %d", minDuration))
	case d > maxDuration:
		return 0, invalidParameter("durationSeconds",
			fmt.Sprintf("Member must have value less than or equal to %d", maxDuration))
	}
	return d, nil
}

// invalidParameter is AWS's ValidationError for one parameter, worded as AWS words it.
func invalidParameter(field, constraint string) *awsFault {
	return &awsFault{http.StatusBadRequest, CodeValidation, fmt.Sprintf(
		"1 validation error detected: Value at '%s' failed to satisfy constraint: %s",
		field, constraint)}
}

// verify checks the token's signature against the broker's JWKS, its kid, expiry and
// audience, with the stub's clock.
func (s *Stub) verify(ctx context.Context, token string) (jwt.MapClaims, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.cfg.Now),
	}
	if !s.cfg.Faults.STSSkipsAudience {
		// AWS STS takes a web identity only when it is addressed to STS itself.
		opts = append(opts, jwt.WithAudience(wire.AudienceSTS))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		return s.keys.key(ctx, kid)
	}, opts...)
	var idp *idpError
	switch {
	case errors.As(err, &idp):
		// The token may be fine: the stub could not check it.
		return nil, &awsFault{http.StatusBadRequest, CodeIDPCommunication, idp.Error()}
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, &awsFault{http.StatusBadRequest, CodeExpiredToken, "token is expired"}
	case err != nil:
		return nil, &awsFault{http.StatusBadRequest, CodeInvalidIdentityToken, err.Error()}
	}
	return claims, nil
}

// actorTag reads the agentkeys_actor_omni principal tag, which must hold one canonical
// bare omni: it becomes the S3 prefix, so nothing else may pass.
func actorTag(claims jwt.MapClaims) (omni.Omni, error) {
	refuse := func(why string) (omni.Omni, error) {
		return omni.Omni{}, &awsFault{http.StatusBadRequest, CodeInvalidIdentityToken, why}
	}
	tags, ok := claims[wire.TagsClaim].(map[string]any)
	if !ok {
		return refuse("token carries no " + wire.TagsClaim + " claim")
	}
	principal, ok := tags["principal_tags"].(map[string]any)
	if !ok {
		return refuse("token carries no principal_tags")
	}
	values, ok := principal[wire.TagActorOmni].([]any)
	if !ok || len(values) != 1 {
		return refuse("token carries no single " + wire.TagActorOmni + " tag")
	}
	v, _ := values[0].(string)
	o, err := omni.ParseBare(v)
	if err != nil {
		return refuse(wire.TagActorOmni + " tag is not a canonical omni")
	}
	return o, nil
}

func (s *Stub) role(arn string) (policy.Role, string, error) {
	switch arn {
	case s.cfg.VaultRoleARN:
		return policy.Vault, s.cfg.VaultBucket, nil
	case s.cfg.MemoryRoleARN:
		return policy.Memory, s.cfg.MemoryBucket, nil
	}
	if s.cfg.Faults.STSIgnoresRole {
		return policy.Vault, s.cfg.VaultBucket, nil
	}
	return "", "", &awsFault{http.StatusForbidden, CodeAccessDenied,
		fmt.Sprintf("role %q is not assumable with a web identity here", arn)}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sessionPolicy is the policy for role and actor; the policy faults widen it, to every
// agent's prefix or to every class under the actor's own.
func (s *Stub) sessionPolicy(role policy.Role, bucket string, actor omni.Omni) ([]byte,
	error) {
	f := s.cfg.Faults
	if !f.PolicyGrantsAllBots && !f.PolicyListsWholePrefix {
		return policy.Build(role, bucket, actor)
	}
	doc := policy.For(role, bucket, actor)
	prefix := "bots/" + actor.String() + "/*"
	if f.PolicyGrantsAllBots {
		doc.Statement[0].Resource = []string{"arn:aws:s3:::" + bucket + "/bots/*"}
		prefix = "bots/*"
	}
	doc.Statement[1].Condition = map[string]map[string]string{
		"StringLike": {"s3:prefix": prefix}}
	return policy.Encode(doc)
}
