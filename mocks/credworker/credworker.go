package credworker

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/policy"
	"github.com/agentkeys/harness/protocol/wire"
)

// Name is the worker's name in logs and in its health answer.
const Name = "cred-worker"

// Worker is the credentials worker: the shared core with the cred routes.
type Worker = worker.Core

// New checks cfg and returns a Worker whose Handler serves the cred routes, GET
// /v1/audit and GET /healthz. cfg.Bucket is the vault bucket.
func New(cfg worker.Config) (*Worker, error) {
	return worker.New(Name, cfg,
		worker.Route{Path: wire.RouteCredStore, Op: cap.OpStore,
			DataClass: cap.ClassCredentials, Store: true, ChainReason: chainReason,
			Serve: store},
		worker.Route{Path: wire.RouteCredFetch, Op: cap.OpFetch,
			DataClass: cap.ClassCredentials, ChainReason: chainReason, Serve: fetch},
		worker.Route{Path: wire.RouteCredList, Op: cap.OpFetch,
			DataClass: cap.ClassCredentials, ChainReason: chainReason, Serve: list},
	)
}

// Key is where the credential for service lives: bots/<owner>/credentials/<service>.enc.
func Key(owner omni.Omni, service string) string {
	return policy.Prefix(policy.Vault, owner) + service + ".enc"
}

// chainReason names each chain failure the way the upstream cred worker does: an
// unknown and a revoked device are both inactive.
func chainReason(f chain.Failure) string {
	switch f {
	case chain.DeviceUnknown, chain.DeviceRevoked:
		return wire.ReasonDeviceInactive
	case chain.BindingMismatch:
		return wire.ReasonDeviceBindingMismatch
	case chain.RoleMissing:
		return wire.ReasonDeviceRoleMissing
	case chain.NotInScope:
		return wire.ReasonServiceNotInScope
	case chain.EpochMismatch:
		return wire.ReasonK3EpochMismatch
	}
	// chain.Check has no other failures; an unnamed one must still refuse.
	return wire.ReasonDeviceInactive
}

// store seals the plaintext for the actor and writes it under the actor's prefix. Only
// master-self caps may store, so that no agent can plant a credential that shadows one
// its master vaulted; the broker refuses to mint such a cap and this is the second lock.
func store(ctx context.Context, call *worker.Call) (any, *worker.Refusal) {
	if call.Cap.Operator != call.Cap.Actor {
		return nil, worker.Refuse(http.StatusForbidden, wire.ReasonCredStoreNotMasterSelf,
			"cred store is master-self only: operator must equal actor")
	}
	actor := call.Cap.Actor
	return call.Store(ctx, actor, Key(actor, call.Cap.Service))
}

// fetch reads the operator's vault. The envelope's AAD names the actor of the cap that
// stored it, and a store cap is master-self, so that actor was the operator: the AAD to
// open with is the operator's, also for a delegated cap whose actor is an agent.
func fetch(ctx context.Context, call *worker.Call) (any, *worker.Refusal) {
	owner := call.Cap.Operator
	env, err := call.Get(ctx, Key(owner, call.Cap.Service))
	if err != nil {
		// Any failure, a missing key included, is a 502: the caller tells NoSuchKey from
		// AccessDenied by detail.attempts[].s3_code.
		return nil, worker.RefuseS3(http.StatusBadGateway, wire.ReasonS3Get, err,
			call.Bucket.Name(), owner)
	}
	return call.FetchAnswer(owner, env)
}

// list names the services stored under the actor's prefix. Only a master-self fetch cap
// may list: a cap for one service must not enumerate the whole vault.
func list(ctx context.Context, call *worker.Call) (any, *worker.Refusal) {
	if call.Cap.Operator != call.Cap.Actor {
		return nil, worker.Refuse(http.StatusForbidden, wire.ReasonListNotMasterSelf,
			"cred list is master-self only: operator must equal actor")
	}
	actor := call.Cap.Actor
	prefix := policy.Prefix(policy.Vault, actor)
	call.Record(prefix, nil)
	keys, err := call.Bucket.List(ctx, prefix)
	if err != nil {
		return nil, worker.RefuseS3(http.StatusBadGateway, wire.ReasonS3List, err,
			call.Bucket.Name(), actor)
	}

	services := []string{}
	for _, k := range keys {
		name, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), ".enc")
		// Only direct children that a store could have written: a deeper key or another
		// suffix was put there around the worker and names no service.
		if ok && name != "" && !strings.Contains(name, "/") {
			services = append(services, name)
		}
	}
	sort.Strings(services)
	return &wire.ListAnswer{OK: true, Services: services}, nil
}
