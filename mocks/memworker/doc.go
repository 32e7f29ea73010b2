// Package memworker is the harness's memory worker: POST /v1/memory/put and /get over the
// memory bucket. Memory belongs to the actor: a put or get, master-self or delegated,
// touches bots/<actor>/memory/<service>.enc, where the service is memory:<namespace>.
// Every chain failure is answered with the one reason chain_check_failed, as upstream.
//
// The credential headers, cap checks, envelope, S3 calls and audit log are the shared
// core in package worker.
package memworker
