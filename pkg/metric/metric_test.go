package metric

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterSharesSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "hipersync_test_total", Help: "test"}
	a := Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	b := Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	if a != b {
		t.Fatal("a second registration of the same series got its own collector")
	}
	if c := Register(nil, prometheus.NewCounter(opts)); c == nil {
		t.Fatal("nil registry: want the collector back")
	}
	defer func() {
		if recover() == nil {
			t.Error("the same name with other labels did not panic")
		}
	}()
	Register(reg, prometheus.NewCounterVec(opts, []string{"other"}))
}
