package broker_test

import (
	"os"
	"runtime/metrics"
	"testing"

	"github.com/hipersync/hipersync/services/token-broker/broker"
)

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TuneGC raises GOGC for the binary unless the environment sets it, and
// restores what was there.
func TestTuneGC(t *testing.T) {
	before := gogc()
	t.Setenv("GOGC", "50")
	broker.TuneGC()()
	if got := gogc(); got != before {
		t.Fatalf("GOGC set in the environment: TuneGC changed the target from %d to %d", before, got)
	}
	if err := os.Unsetenv("GOGC"); err != nil { // t.Setenv restores it
		t.Fatal(err)
	}
	restore := broker.TuneGC()
	if got := gogc(); got != broker.GCPercent {
		t.Fatalf("GOGC unset: target %d, want %d", got, broker.GCPercent)
	}
	restore()
	if got := gogc(); got != before {
		t.Fatalf("after restore: target %d, want %d", got, before)
	}
}
