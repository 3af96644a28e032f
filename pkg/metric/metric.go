// Package metric holds what the Prometheus metrics of several packages
// share. It depends on the Prometheus client alone, so the packages that
// count (the Hiper client, the event layer) stay light.
package metric

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it; when reg already holds a
// collector of the same series, it returns that one instead, so that the
// parts of one process that share a registry (two consumer loops, every
// Hiper client, the whole dev run) count into the same series. A nil reg
// leaves c unregistered.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	// Same name, other labels or help: a programming error, as with
	// MustRegister.
	panic(err)
}
