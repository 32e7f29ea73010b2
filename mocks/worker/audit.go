package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/agentkeys/harness/protocol/wire"
)

// auditCapacity bounds the log. A mock stack under a fuzzer or a benchmark sees millions
// of requests; the tests that read the log only need the recent ones.
const auditCapacity = 4096

// auditLog is the worker's in-memory audit log. An entry is made from identities, keys,
// status and hashes only: nothing that reaches it can hold a plaintext or a credential.
type auditLog struct {
	mu  sync.Mutex
	seq uint64
	// ring holds the last auditCapacity entries; entry n (from 1) sits at
	// (n-1) % auditCapacity, so a full log drops its oldest entry without copying.
	ring []wire.AuditEntry
}

// append numbers, stamps and hashes e, keeps it, and returns it as kept.
func (a *auditLog) append(e wire.AuditEntry, now time.Time) wire.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()

	a.seq++
	e.Seq = a.seq
	e.Time = now.UTC().Format(time.RFC3339Nano)
	e.Hash = ""
	raw, err := json.Marshal(e)
	if err != nil {
		panic("worker: encode audit entry: " + err.Error()) // strings and integers only
	}
	sum := sha256.Sum256(raw)
	e.Hash = "0x" + hex.EncodeToString(sum[:])

	if len(a.ring) < auditCapacity {
		a.ring = append(a.ring, e)
	} else {
		a.ring[(e.Seq-1)%auditCapacity] = e
	}
	return e
}

// snapshot returns a copy of the kept entries, oldest first.
func (a *auditLog) snapshot() []wire.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ring) < auditCapacity {
		return append([]wire.AuditEntry{}, a.ring...)
	}
	// The oldest entry is the one the next append will overwrite.
	oldest := int(a.seq % auditCapacity)
	out := make([]wire.AuditEntry, 0, auditCapacity)
	out = append(out, a.ring[oldest:]...)
	return append(out, a.ring[:oldest]...)
}

// envelopeHash is hex SHA-256 of an envelope: enough to match an audit entry to the
// object in S3 without the log holding the object.
func envelopeHash(env []byte) string {
	sum := sha256.Sum256(env)
	return hex.EncodeToString(sum[:])
}
