package memworker

import (
	"context"
	"encoding/base64"
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

// Worker is the memory worker.
type Worker struct {
	core *worker.Core
}

// New checks cfg and returns a Worker. cfg.Bucket is the memory bucket.
func New(cfg worker.Config) (*Worker, error) {
	core, err := worker.New(Name, cfg)
	if err != nil {
		return nil, err
	}
	return &Worker{core: core}, nil
}

// Handler serves the memory routes, GET /v1/audit and GET /healthz.
func (w *Worker) Handler() http.Handler {
	return w.core.Handler(
		worker.Route{Path: wire.RouteMemoryPut, Op: cap.OpStore, DataClass: cap.ClassMemory,
			Store: true, ChainReason: chainReason, Serve: w.put},
		worker.Route{Path: wire.RouteMemoryGet, Op: cap.OpFetch, DataClass: cap.ClassMemory,
			ChainReason: chainReason, Serve: w.get},
	)
}

// Audit returns the worker's audit log, oldest entry first.
func (w *Worker) Audit() []wire.AuditEntry { return w.core.Audit() }

// Key is where actor's memory for service lives: bots/<actor>/memory/<service>.enc. With
// service memory:<namespace> that is bots/<actor>/memory/memory:<namespace>.enc.
func Key(actor omni.Omni, service string) string {
	return policy.Prefix(policy.Memory, actor) + service + ".enc"
}

// chainReason is the memory worker's single reason for every chain failure.
func chainReason(chain.Failure) string { return wire.ReasonChainCheckFailed }

// put seals the plaintext for the actor and writes it under the actor's prefix.
func (w *Worker) put(ctx context.Context, call *worker.Call) (any, *worker.Refusal) {
	plaintext, ref := call.Plaintext()
	if ref != nil {
		return nil, ref
	}
	actor := call.Cap.Actor
	env, ref := call.Seal(actor, plaintext)
	if ref != nil {
		return nil, ref
	}
	key := Key(actor, call.Cap.Service)
	call.Record(key, env)
	if err := call.Bucket.Put(ctx, key, env); err != nil {
		return nil, worker.RefuseS3(http.StatusBadGateway, wire.ReasonS3Put, err,
			call.Bucket.Name(), actor)
	}
	return &wire.StoreAnswer{OK: true, S3Key: key, EnvelopeSize: len(env)}, nil
}

// get reads the actor's memory. Unlike the cred worker, a missing object is its own
// answer, 404 s3_no_such_key: an empty namespace is a normal state for memory.
func (w *Worker) get(ctx context.Context, call *worker.Call) (any, *worker.Refusal) {
	actor := call.Cap.Actor
	key := Key(actor, call.Cap.Service)
	call.Record(key, nil)
	env, err := call.Bucket.Get(ctx, key)
	if err != nil {
		status, reason := http.StatusBadGateway, wire.ReasonS3Get
		if worker.S3Code(err) == "NoSuchKey" {
			status, reason = http.StatusNotFound, wire.ReasonS3NoSuchKey
		}
		return nil, worker.RefuseS3(status, reason, err, call.Bucket.Name(), actor)
	}
	call.Record(key, env)

	plaintext, ref := call.Open(actor, env)
	if ref != nil {
		return nil, ref
	}
	return &wire.FetchAnswer{OK: true,
		PlaintextB64: base64.StdEncoding.EncodeToString(plaintext)}, nil
}
