// Package testkit is what tests in every module share: waiting on a
// condition with a deadline, a namespace prefix of their own, the
// connection to the tests' NATS, and the CPU and heap benchmarks report. Only
// tests and test stacks (brokertest, scheduletest) import it; production
// code must not.
package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WaitFor polls cond every 10ms until it holds, failing t after timeout.
// Tests wait on what they assert, never on a sleep.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Prefix is a namespace prefix (events.Namespace) unique to t and to this
// run: "t", a hash of the test's name for a human to recognise, and
// randomness so reruns and -count=N never meet. Tests that use it run in
// parallel against one NATS and one Redis.
func Prefix(t testing.TB) string {
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	return "t" + hex.EncodeToString(h.Sum(nil)) + "_" + RandomHex(4)
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Recv receives from ch, failing t when nothing comes within timeout: a
// test never blocks on a receive without a deadline.
func Recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
		var zero T
		return zero
	}
}

// Connect connects to the NATS server of the tests ($NATS_URL, or the
// default 127.0.0.1:4222), closed when t ends.
func Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to NATS at %s (set NATS_URL): %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("JetStream at %s: %v", url, err)
	}
	return nc, js
}

// HeapInUse is the heap in use after a collection (two: the first leaves
// sync.Pool's victims), for benchmarks reporting memory per unit.
func HeapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// CPUTime is the CPU (user and system) this process has used so far.
func CPUTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
