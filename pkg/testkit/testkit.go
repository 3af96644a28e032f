// Package testkit is what tests in every module share: waiting on a
// condition with a deadline, and a namespace prefix of their own. Only
// tests and test stacks (brokertest, scheduletest) import it; production
// code must not.
package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"testing"
	"time"
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
