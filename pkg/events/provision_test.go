package events

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/natstest"
)

// Bounds come from the namespace's Limits; a later start with other bounds
// updates only the stream whose bound changed, and Usage reports them.
// Usage lists every stream of the server a page at a time (256 to a page,
// by offset): on the shared server, where parallel tests hold hundreds of
// streams and delete theirs as they end, a page may skip one of this
// test's streams, so the test has a server of its own.
func TestStreamLimitsAndUsage(t *testing.T) {
	t.Parallel()
	e := newTestEnvOn(t, natstest.StartServer(t, "").URL())
	ns := e.ns
	ns.Limits = Limits{StoreMaxBytes: 1 << 20, HiperMaxBytes: 2 << 20, DeadLetterMaxBytes: 1 << 20, DeadLetterMaxAge: time.Hour, BucketMaxBytes: 1 << 20}
	got := map[string]string{}
	record := WithReport(func(stream, action string) { got[stream] = action })
	if err := EnsureStreams(t.Context(), e.js, ns, record); err != nil {
		t.Fatal(err)
	}
	for _, s := range Streams {
		if got[ns.Stream(s)] != "updated" {
			t.Errorf("%s: %q, want updated (bounds added)", ns.Stream(s), got[ns.Stream(s)])
		}
	}
	clear(got)
	ns.Limits.HiperMaxBytes = 3 << 20
	if err := EnsureStreams(t.Context(), e.js, ns, record); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ns.Stream(StreamStore): "unchanged", ns.Stream(StreamHiper): "updated", ns.Stream(StreamDeadLetter): "unchanged"}
	for s, action := range want {
		if got[s] != action {
			t.Errorf("%s: %q, want %q", s, got[s], action)
		}
	}
	if _, err := EnsureKV(t.Context(), e.js, ns, "bounded"); err != nil {
		t.Fatal(err)
	}
	// A second ensure of the same bucket changes nothing.
	if _, err := EnsureKV(t.Context(), e.js, ns, "bounded"); err != nil {
		t.Fatal(err)
	}
	usage, err := Usage(t.Context(), e.js, ns)
	if err != nil {
		t.Fatal(err)
	}
	bounds := map[string]int64{}
	for _, u := range usage {
		bounds[u.Stream] = u.MaxBytes
	}
	wantBounds := map[string]int64{ns.Stream(StreamStore): 1 << 20, ns.Stream(StreamHiper): 3 << 20,
		ns.Stream(StreamDeadLetter): 1 << 20, "KV_" + ns.Bucket("bounded"): 1 << 20}
	for s, b := range wantBounds {
		if bounds[s] != b {
			t.Errorf("%s bound %d, want %d (usage %v)", s, bounds[s], b, usage)
		}
	}
	st, err := e.js.Stream(t.Context(), ns.Stream(StreamDeadLetter))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxAge != time.Hour || cfg.Discard != jetstream.DiscardOld {
		t.Errorf("DEADLETTER: max age %s, discard %v", cfg.MaxAge, cfg.Discard)
	}
}

// Which refusals provisioning waits out and which end it. "No suitable
// peers" is what a fresh cluster answers until its meta leader has heard
// from every node (the failure CI met on a cluster 1 s old), and what a
// node that is down makes of an R3 create: it passes, so it is waited out.
func TestProvisionRetriesWhatPasses(t *testing.T) {
	for _, c := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"no suitable peers, peer offline", &jetstream.APIError{Code: 400, ErrorCode: errCodeNoPeers,
			Description: "no suitable peers for placement, peer offline"}, false},
		{"stream name in use with another configuration", &jetstream.APIError{Code: 400,
			ErrorCode: jetstream.JSErrCodeStreamNameInUse}, false},
		{"insufficient storage", &jetstream.APIError{Code: 500, ErrorCode: errCodeInsufficientStorage}, false},
		{"replicas on a single server", &jetstream.APIError{Code: 500, ErrorCode: 10074}, true},
		{"a bad configuration", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest}, true},
	} {
		if got := permanent(c.err); got != c.permanent {
			t.Errorf("%s: permanent = %v, want %v", c.name, got, c.permanent)
		}
	}
}
