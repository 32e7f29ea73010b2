// Package wire holds the JSON request and answer bodies and the routes of the broker and
// the workers, and the default role and bucket names, so that the mocks and every client
// read and write the same shapes and fall back to the same names.
package wire
