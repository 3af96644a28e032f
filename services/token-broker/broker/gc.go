package broker

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target (GOGC) token-broker runs
// with unless its environment sets GOGC. Its live heap is a few megabytes
// (tenant records, tokens, connection buffers), while every gRPC call
// allocates a few kilobytes, nearly all of it in gRPC itself. With Go's
// default of 100 it collects whenever the heap has grown by those few
// megabytes: tens of times a second under load, and the calls in flight
// during a collection (mark assists, its stop-the-world phases, a quarter
// of the CPU for marking) are the slowest ones, the whole p99
// (BenchmarkGetToken; docs/operations.md, "Garbage collection in
// token-broker"). At 2000 the heap grows to 80 MB (Go's 4 MB minimum,
// scaled as GOGC is) or 21 times its live size between collections;
// GOMEMLIMIT (the manifest's) still bounds it.
const GCPercent = 2000

// TuneGC applies GCPercent unless GOGC is set in the environment, which
// the Go runtime has already applied, and returns what restores the
// previous setting.
func TuneGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	prev := debug.SetGCPercent(GCPercent)
	return func() { debug.SetGCPercent(prev) }
}
