// Package workertest provides what tests of the workers need to make real requests
// without a broker: a broker signing key, identities with registered device keys, and
// caps built field by field, so that a test can sign exactly the cap it means to send,
// including ones no broker would mint (expired, wrong class, foreign device). For tests
// against a real MinIO it also serves a worker over HTTP and asks MinIO for the scoped
// credentials the STS stub would hand out.
//
// It is test support in the manner of net/http/httptest. The helpers that build keys and
// caps panic, with the package name in the message, where a test could not go on anyway;
// the ones that take a testing.TB end that test instead.
package workertest
