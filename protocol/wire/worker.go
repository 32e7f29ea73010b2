package wire

import "encoding/json"

// The worker routes. Every POST body carries the cap token as a JSON object; the worker
// takes the S3 key from the signed payload inside it and from nowhere else. Both workers
// also serve RouteHealthz with a Healthz answer.
const (
	RouteCredStore = "/v1/cred/store"
	RouteCredFetch = "/v1/cred/fetch"
	RouteCredList  = "/v1/cred/list"
	RouteMemoryPut = "/v1/memory/put"
	RouteMemoryGet = "/v1/memory/get"

	// RouteAudit is the harness's stand-in for the upstream audit worker: the in-memory
	// log of a worker, hashes only.
	RouteAudit = "/v1/audit"
)

// The headers that carry the caller's temporary S3 credentials to a worker. HTTP header
// names are case-insensitive; these are the canonical spellings.
const (
	HeaderAccessKeyID     = "X-Aws-Access-Key-Id"
	HeaderSecretAccessKey = "X-Aws-Secret-Access-Key"
	HeaderSessionToken    = "X-Aws-Session-Token"
)

// Reasons the workers answer with. The cap checks come first, in the order of the first
// group. The reasons the broker shares (listed in broker.go) are declared here once.
const (
	ReasonBrokerSigInvalid     = "broker_sig_invalid"
	ReasonCapPopInvalid        = "cap_pop_invalid"
	ReasonCapOpMismatch        = "cap_op_mismatch"
	ReasonCapDataClassMismatch = "cap_data_class_mismatch"
	ReasonCapFreshnessFailed   = "cap_freshness_failed"

	// The cred worker names each chain failure; an unknown and a revoked device are both
	// device_inactive.
	ReasonDeviceInactive        = "device_inactive"
	ReasonDeviceBindingMismatch = "device_binding_mismatch"
	ReasonDeviceRoleMissing     = "device_role_missing"
	ReasonServiceNotInScope     = "service_not_in_scope"
	ReasonK3EpochMismatch       = "k3_epoch_mismatch"

	// The memory worker answers every chain failure with this one reason.
	ReasonChainCheckFailed = "chain_check_failed"

	ReasonCredStoreNotMasterSelf = "cred_store_not_master_self"
	ReasonListNotMasterSelf      = "list_not_master_self"
	ReasonPlaintextB64Decode     = "plaintext_b64_decode"

	// ReasonInvalidInput is a body that does not parse, or a signed payload that no
	// broker would produce (an omni or service that is not canonical).
	ReasonInvalidInput = "invalid_input"
	// ReasonPayloadTooLarge goes with 413 for a body above 1 MiB.
	ReasonPayloadTooLarge = "payload_too_large"

	ReasonS3Put       = "s3_put"
	ReasonS3Get       = "s3_get"
	ReasonS3List      = "s3_list"
	ReasonS3NoSuchKey = "s3_no_such_key"

	// An object in the caller's prefix that the worker's KEK does not open (written
	// around the worker, or for another actor or service) is a 500, as upstream.
	ReasonEnvelopeDecrypt = "envelope_decrypt"
	ReasonEnvelopeEncrypt = "envelope_encrypt"
)

// StoreRequest is the body of RouteCredStore and RouteMemoryPut.
type StoreRequest struct {
	// Cap is the cap token object as the broker returned it; decode it with cap.Decode.
	Cap          json.RawMessage `json:"cap"`
	PlaintextB64 string          `json:"plaintext_b64"`
}

// FetchRequest is the body of RouteCredFetch, RouteCredList and RouteMemoryGet.
type FetchRequest struct {
	Cap json.RawMessage `json:"cap"`
}

// StoreAnswer is the success answer of a store or put.
type StoreAnswer struct {
	OK    bool   `json:"ok"`
	S3Key string `json:"s3_key"`
	// EnvelopeSize is the stored object's length: the plaintext plus 29 bytes.
	EnvelopeSize int `json:"envelope_size"`
	// AuditEnvelopeHash is the receipt of the audit entry this store wrote: the Hash of
	// that AuditEntry.
	AuditEnvelopeHash string `json:"audit_envelope_hash"`
}

// FetchAnswer is the success answer of a fetch or get.
type FetchAnswer struct {
	OK           bool   `json:"ok"`
	PlaintextB64 string `json:"plaintext_b64"`
}

// ListAnswer is the success answer of RouteCredList: the service names stored under the
// actor's credentials prefix, without the .enc suffix.
type ListAnswer struct {
	OK       bool     `json:"ok"`
	Services []string `json:"services"`
}

// S3Detail is the "detail" of an s3_put, s3_get, s3_list or s3_no_such_key refusal.
type S3Detail struct {
	Attempts []S3Attempt `json:"attempts"`
}

// S3Attempt is one S3 call a worker made on the caller's behalf and how it ended.
type S3Attempt struct {
	// S3Code is the S3 error code (NoSuchKey, AccessDenied, ...), or RequestError when
	// no S3 answer arrived at all.
	S3Code     string `json:"s3_code"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Bucket     string `json:"bucket"`
	S3Key      string `json:"s3_key"`
	// Owner is the bare omni whose prefix the call touched.
	Owner   string `json:"owner_omni"`
	Message string `json:"message,omitempty"`
}

// S3CodeRequestError is the S3Attempt code of a call that got no S3 answer.
const S3CodeRequestError = "RequestError"

// AuditAnswer is the answer of RouteAudit, oldest entry first.
type AuditAnswer struct {
	Entries []AuditEntry `json:"entries"`
}

// AuditEntry records one worker request. It holds identities, keys and hashes, never a
// plaintext, an envelope or a credential.
type AuditEntry struct {
	Seq    uint64 `json:"seq"`
	Time   string `json:"time"`
	Route  string `json:"route"`
	Status int    `json:"status"`
	// Outcome is "ok" or "refused"; Reason is set when refused.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Operator, Actor and Service come from the cap, and only once its broker_sig
	// verified, so that the log never names an identity a forger typed in.
	Operator string `json:"operator_omni,omitempty"`
	Actor    string `json:"actor_omni,omitempty"`
	Service  string `json:"service,omitempty"`
	S3Key    string `json:"s3_key,omitempty"`
	// EnvelopeSHA256 is hex SHA-256 of the envelope stored or read.
	EnvelopeSHA256 string `json:"envelope_sha256,omitempty"`
	// Hash is "0x" + hex SHA-256 of this entry's JSON with Hash empty.
	Hash string `json:"hash"`
}
