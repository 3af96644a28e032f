// Package testkit is what tests in every module share: waiting on a
// condition with a deadline, a namespace prefix of their own, the
// connection to the tests' NATS, and the CPU and heap benchmarks report. Only
// tests and test stacks (brokertest, scheduletest) import it; production
// code must not.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// WaitFor polls cond every 10ms until it holds, failing t after timeout.
// Tests wait on what they assert, never on a sleep.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Until polls cond every 10ms until it holds (true) or timeout passes
// (false): WaitFor for a caller that says more on failure than WaitFor
// can, or that must not fail the test (a goroutine).
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
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

// SmallBounds are the stream and bucket bounds of a test namespace, as the
// variables a process reads them from (config.Common). NATS reserves each
// stream's and bucket's MaxBytes on its disk at creation: the defaults
// (~20 GiB a namespace) would have a few tests at once fill the shared
// server ("insufficient storage resources"). Test stacks and every process
// a test starts on a namespace use them.
var SmallBounds = map[string]string{
	"HIPERSYNC_STORE_MAX_BYTES": "64MiB", "HIPERSYNC_HIPER_MAX_BYTES": "128MiB",
	"HIPERSYNC_DEADLETTER_MAX_BYTES": "16MiB", "HIPERSYNC_BUCKET_MAX_BYTES": "32MiB",
	"HIPERSYNC_AUDIT_MAX_BYTES": "16MiB",
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

// Wait waits for wg, failing t when it is not done within timeout: the
// goroutines a test started must end, and say so when they do not.
func Wait(t testing.TB, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	Recv(t, done, timeout, what)
}

// EnvOr is the environment variable name, trimmed, or def when it is unset
// or blank: where a test finds the servers it uses (NATS_URL, REDIS_URL).
func EnvOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// NATSURL is the tests' NATS server: $NATS_URL, or 127.0.0.1:4222.
func NATSURL() string { return EnvOr("NATS_URL", nats.DefaultURL) }

// RedisURL is the tests' Redis: $REDIS_URL, or database 0 of
// 127.0.0.1:6379.
func RedisURL() string { return EnvOr("REDIS_URL", "redis://127.0.0.1:6379/0") }

// DeleteNamespace deletes every stream (KV buckets included) of the
// namespace prefix, so the shared server keeps nothing of the test.
func DeleteNamespace(t testing.TB, js jetstream.JetStream, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var doomed []string
	for name := range js.StreamNames(ctx).Name() {
		if strings.HasPrefix(name, prefix+"_") || strings.HasPrefix(name, "KV_"+prefix+"_") {
			doomed = append(doomed, name)
		}
	}
	for _, name := range doomed {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Errorf("delete stream %s: %v", name, err)
		}
	}
}

// DeleteRedisKeys deletes the Redis keys of the namespace prefix
// (hipersync:<prefix>:*).
func DeleteRedisKeys(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, "hipersync:"+prefix+":*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// Connect connects to the NATS server of the tests ($NATS_URL, or the
// default 127.0.0.1:4222), closed when t ends.
func Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	url := NATSURL()
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
