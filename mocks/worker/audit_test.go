package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/wire"
)

// TestAuditLogKeepsTheNewest: past its capacity the log drops the oldest entries and
// still returns the rest in order.
func TestAuditLogKeepsTheNewest(t *testing.T) {
	var log auditLog
	assert.NotNil(t, log.snapshot(), "an empty log is [], not null")

	for _, total := range []int{3, auditCapacity, auditCapacity + 10, 3*auditCapacity + 1} {
		log = auditLog{}
		for range total {
			log.append(wire.AuditEntry{Route: "/r"}, time.Now())
		}
		got := log.snapshot()
		want := min(total, auditCapacity)
		require.Len(t, got, want, "after %d", total)
		assert.Equal(t, uint64(total-want+1), got[0].Seq, "oldest after %d", total)
		for i := 1; i < len(got); i++ {
			if got[i].Seq != got[i-1].Seq+1 {
				t.Fatalf("after %d: entry %d is seq %d after %d", total, i, got[i].Seq,
					got[i-1].Seq)
			}
		}
	}
}
