package testkit

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPrefix(t *testing.T) {
	t.Parallel()
	a, b := Prefix(t), Prefix(t)
	if a == b || a[:9] != b[:9] || len(a) > 32 || strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		t.Errorf("Prefix = %q, %q; want two prefixes of this test, different, of a-z 0-9 _ up to 32", a, b)
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	n := 0
	WaitFor(t, time.Second, "the third look", func() bool { n++; return n == 3 })
}

func TestUntil(t *testing.T) {
	t.Parallel()
	n := 0
	if !Until(time.Second, func() bool { n++; return n == 3 }) {
		t.Error("Until = false for a condition that comes to hold")
	}
	if Until(30*time.Millisecond, func() bool { return false }) {
		t.Error("Until = true for a condition that never holds")
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	ran := false
	wg.Go(func() { ran = true })
	Wait(t, &wg, time.Second, "the goroutine")
	if !ran {
		t.Error("Wait returned before the goroutine ended")
	}
}

func TestRecv(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 7
	if v := Recv(t, ch, time.Second, "the seven"); v != 7 {
		t.Errorf("Recv = %d, want 7", v)
	}
}

func TestFreeAddr(t *testing.T) {
	t.Parallel()
	addr := FreeAddr(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr %s: %v", addr, err)
	}
	_ = l.Close()
}

// TestFreePorts: the ports are distinct, below the range outgoing
// connections take theirs from, and claimed against every other test binary.
func TestFreePorts(t *testing.T) {
	t.Parallel()
	ps := FreePorts(t, 50)
	lo, hi := claimRange()
	seen := map[int]bool{}
	for _, p := range ps {
		if seen[p] || p < lo || p >= hi {
			t.Fatalf("FreePorts gave %v; want 50 distinct ports in %d-%d", ps, lo, hi)
		}
		seen[p] = true
	}
	// A second claim, as another test binary would make, finds it taken.
	if f, ok := claim(filepath.Join(os.TempDir(), "hipersync-test-ports"), ps[0]); ok {
		f.Close()
		t.Errorf("port %d's claim was open to another", ps[0])
	}
}

func TestEnvOr(t *testing.T) {
	t.Setenv("TESTKIT_ENVOR", " set ")
	if v := EnvOr("TESTKIT_ENVOR", "def"); v != "set" {
		t.Errorf("EnvOr of a set variable = %q, want %q", v, "set")
	}
	t.Setenv("TESTKIT_ENVOR", "  ")
	if v := EnvOr("TESTKIT_ENVOR", "def"); v != "def" {
		t.Errorf("EnvOr of a blank variable = %q, want %q", v, "def")
	}
}
