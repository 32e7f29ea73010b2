package wire

// The routes of the mock service provider, a model-API vendor that an agent signs up with
// by email and whose API key it then keeps in its vault. RouteVendorVerifyPrefix + token
// is the link of the verification mail.
const (
	RouteVendorSignup       = "/signup"
	RouteVendorVerifyPrefix = "/verify/"
	RouteVendorWhoami       = "/v1/whoami"
)

// Reasons of the vendor, chosen by the harness.
const (
	// ReasonInvalidAPIKey: a whoami without a key, or with one that is unknown or
	// revoked (401).
	ReasonInvalidAPIKey = "invalid_api_key"
	// ReasonVerificationInvalid: a verification link that is unknown, spent or expired
	// (401).
	ReasonVerificationInvalid = "verification_invalid"
)

// VendorSignupStatus is the status of an accepted sign-up: a link is on its way.
const VendorSignupStatus = "verification_sent"

// VendorSignupRequest is the body of RouteVendorSignup.
type VendorSignupRequest struct {
	Email string `json:"email"`
}

// VendorSignupAnswer says that the verification link was mailed.
type VendorSignupAnswer struct {
	Status string `json:"status"`
}

// VendorVerifyAnswer is the answer of a visited verification link: the new API key, shown
// once, to whoever holds the link. It revokes the email's earlier key.
type VendorVerifyAnswer struct {
	Email  string `json:"email"`
	APIKey string `json:"api_key"`
}

// VendorWhoamiAnswer names the email an API key is bound to.
type VendorWhoamiAnswer struct {
	Email string `json:"email"`
}
