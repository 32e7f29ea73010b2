// Package wire holds the JSON request and answer bodies and the routes of the broker and
// the workers, so that the mocks and every client read and write the same shapes.
package wire
