// Package credworker is the harness's credentials worker: POST /v1/cred/store, /fetch and
// /list over the vault bucket, with the upstream worker's reasons. It keeps only its
// routes here; the credential headers, cap checks, envelope, S3 calls and audit log are
// the shared core in package worker.
//
// Credentials are single-vault: a store must be master-self (operator = actor), so every
// credential lives under bots/<operator>/credentials/, and a fetch reads that prefix even
// when a delegated cap names an agent as actor. The agent's scope grant on the chain is
// its authorization; the S3 read still runs with the caller's own credentials.
package credworker
