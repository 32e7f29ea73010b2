package memworker

import (
	"context"
	"net/http"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/policy"
	"github.com/agentkeys/harness/protocol/wire"
)

// Name is the worker's name in logs and in its health answer.
const Name = "memory-worker"

// Worker is the memory worker: the shared core with the memory routes.
type Worker = worker.Core

// New checks cfg and returns a Worker whose Handler serves the memory routes, GET
// /v1/audit and GET /healthz. cfg.Bucket is the memory bucket.
func New(cfg worker.Config) (*Worker, error) {
	return worker.New(Name, cfg,
		worker.Route{Path: wire.RouteMemoryPut, Op: cap.OpStore, DataClass: cap.ClassMemory,
			Store: true, ChainReason: chainReason, Serve: put},
		worker.Route{Path: wire.RouteMemoryGet, Op: cap.OpFetch, DataClass: cap.ClassMemory,
			ChainReason: chainReason, Serve: get},
	)
}

// Key is where actor's memory for service lives: bots/<actor>/memory/<service>.enc. With
// service memory:<namespace> that is bots/<actor>/memory/memory:<namespace>.enc.
func Key(actor omni.Omni, service string) string {
	return policy.Prefix(policy.Memory, actor) + service + ".enc"
}

// chainReason is the memory worker's single reason for every chain failure.
func chainReason(chain.Failure) string { return wire.ReasonChainCheckFailed }

// put seals the plaintext for the actor and writes it under the actor's prefix.
func put(ctx context.Context, call *worker.Call) (any, *worker.Refusal) {
	actor := call.Cap.Actor
	return call.Store(ctx, actor, Key(actor, call.Cap.Service))
}

// get reads the actor's memory. Unlike the cred worker, a missing object is its own
// answer, 404 s3_no_such_key: an empty namespace is a normal state for memory.
func get(ctx context.Context, call *worker.Call) (any, *worker.Refusal) {
	actor := call.Cap.Actor
	env, err := call.Get(ctx, Key(actor, call.Cap.Service))
	if err != nil {
		status, reason := http.StatusBadGateway, wire.ReasonS3Get
		if worker.S3Code(err) == "NoSuchKey" {
			status, reason = http.StatusNotFound, wire.ReasonS3NoSuchKey
		}
		return nil, worker.RefuseS3(status, reason, err, call.Bucket.Name(), actor)
	}
	return call.FetchAnswer(actor, env)
}
