package watcher

import (
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPace(2, 3, func() time.Time { return now })
	for i := range 3 {
		if d := p.take("acme"); d != 0 {
			t.Fatalf("call %d of the burst waits %s", i, d)
		}
	}
	if d := p.take("acme"); d != 500*time.Millisecond {
		t.Errorf("past the burst: wait %s, want 500ms", d)
	}
	if d := p.take("other"); d != 0 {
		t.Errorf("another tenant waits %s", d)
	}
	now = now.Add(500 * time.Millisecond)
	if d := p.take("acme"); d != 0 {
		t.Errorf("after 1/rate: wait %s", d)
	}
	p.forget("acme")
	now = now.Add(time.Millisecond)
	if d := p.take("acme"); d != 0 {
		t.Errorf("a forgotten tenant starts with a full burst; wait %s", d)
	}
}
