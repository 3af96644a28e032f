package testkit

import (
	"strings"
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

func TestRecv(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 7
	if v := Recv(t, ch, time.Second, "the seven"); v != 7 {
		t.Errorf("Recv = %d, want 7", v)
	}
}
