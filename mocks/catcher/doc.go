// Package catcher is a client of the mail catcher's HTTP API (mailpit's /api/v1): it
// lists the messages the catcher holds and reads one message's text.
//
// The API shows every mailbox to whoever asks, so it belongs to the harness side only:
// the tests, and the mock stack's mailbox route, which reads through it and shows an
// agent only the mail addressed to that agent. An agent never gets the catcher's URL.
package catcher
