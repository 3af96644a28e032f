package cli

import (
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/ops"
)

// `hipersync status` gives the invoices both ceilings the watcher polls
// at, and any other sync its one interval.
func TestStatusShowsBothInvoiceCeilings(t *testing.T) {
	at := time.Now().Add(-20 * time.Second)
	for _, c := range []struct {
		v    ops.SyncView
		want string
	}{
		{ops.SyncView{LastSuccessAt: &at, LagSeconds: 20, Target: 5 * time.Minute, Expect: 100 * time.Second}, "20s ago /1m40s expecting, 5m0s"},
		{ops.SyncView{LastSuccessAt: &at, LagSeconds: 20, Target: 5 * time.Minute}, "20s ago /5m0s"},
	} {
		c.v.SetIntervals()
		if got := describe(&c.v); got != c.want {
			t.Errorf("describe = %q, want %q", got, c.want)
		}
	}
}
