// Package kvwatch follows a key-value bucket for as long as a process runs,
// through the failures of a NATS cluster.
//
// A jetstream.KeyWatcher delivers through an ordered consumer that lives on
// one server. When that server dies the client recreates the consumer, but
// it may give up (the watcher's channel closes) or keep failing while the
// bucket moves on without it (the watcher goes quiet, behind). A Watch
// notices both — the channel closing, and the watch staying behind the
// bucket's last revision across a check — and watches again, with backoff;
// the new watch delivers every current value again, so the follower ends up
// with the bucket as it is.
package kvwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/backoff"
	"github.com/hipersync/hipersync/pkg/jscall"
)

// DefaultCheckEvery is how often a Watch compares what it has delivered
// with the bucket's last revision.
const DefaultCheckEvery = 10 * time.Second

// checkTimeout bounds one such comparison.
const checkTimeout = 5 * time.Second

// Config is what a Watch follows and whom it tells.
type Config struct {
	// Keys filters the keys watched (every key when empty).
	Keys []string
	// JS, when set, lets the stall check of a filtered watch ask the
	// bucket's stream for the last revision of Keys; without it only a
	// watch of every key is checked (through the bucket's status).
	JS jetstream.JetStream
	// Entry gets every entry, in order, from one goroutine.
	Entry func(jetstream.KeyValueEntry)
	// Restarting, when set, is called before a new watch delivers every
	// current value again (after which Synced is called).
	Restarting func()
	// Synced, when set, is called once a watch has delivered the values
	// current when it started: after the first watch, and after each
	// restart.
	Synced func()
	// CheckEvery overrides DefaultCheckEvery.
	CheckEvery time.Duration
	// Backoff spaces the attempts to watch again (default backoff.Restart).
	Backoff backoff.Exp
	Log     *slog.Logger
}

// Watch follows a bucket until its context ends.
type Watch struct {
	kv   jetstream.KeyValue
	cfg  Config
	done chan struct{}

	mu       sync.Mutex
	restarts int
	lastErr  error
}

// Start watches kv and follows it in the background until ctx ends. It
// returns once the first watch is created, trying again (each attempt
// bounded, with backoff) while the failure is transient; it fails when the
// watch cannot be created for another reason, or ctx ends first.
func Start(ctx context.Context, kv jetstream.KeyValue, cfg Config) (*Watch, error) {
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = DefaultCheckEvery
	}
	if cfg.Backoff.Base <= 0 {
		cfg.Backoff = backoff.Restart
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	w := &Watch{kv: kv, cfg: cfg, done: make(chan struct{})}
	for n := 1; ; n++ {
		kw, stop, err := w.watch(ctx)
		if err == nil {
			go w.run(ctx, kw, stop)
			return w, nil
		}
		if !jscall.Transient(err) || ctx.Err() != nil {
			return nil, err
		}
		cfg.Log.Warn("watch", "bucket", kv.Bucket(), "error", err, "failures", n)
		if !backoff.Sleep(ctx, cfg.Backoff.Jittered(n)) {
			return nil, ctx.Err()
		}
	}
}

// Done is closed once ctx has ended and the watch stopped.
func (w *Watch) Done() <-chan struct{} { return w.done }

// Restarts is how many times the watch was started again.
func (w *Watch) Restarts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.restarts
}

// Err is why the watch last had to start again, or why it cannot.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// watch creates a watch, in at most jscall.Timeout: a consumer create sent
// while the bucket's stream elects a leader may get no answer, and a watch
// lives as long as the context it was made with, so the attempt gets a
// context of its own, cancelled when it takes too long or, later, by stop.
func (w *Watch) watch(ctx context.Context) (jetstream.KeyWatcher, context.CancelFunc, error) {
	wctx, stop := context.WithCancel(ctx)
	type result struct {
		kw  jetstream.KeyWatcher
		err error
	}
	made := make(chan result, 1)
	go func() {
		var r result
		if len(w.cfg.Keys) == 0 {
			r.kw, r.err = w.kv.WatchAll(wctx)
		} else {
			r.kw, r.err = w.kv.WatchFiltered(wctx, append([]string(nil), w.cfg.Keys...))
		}
		made <- r
	}()
	t := time.NewTimer(jscall.Timeout)
	defer t.Stop()
	select {
	case r := <-made:
		if r.err != nil {
			stop()
			return nil, nil, r.err
		}
		return r.kw, stop, nil
	case <-t.C:
		stop()
		go func() {
			if r := <-made; r.kw != nil {
				_ = r.kw.Stop()
			}
		}()
		return nil, nil, fmt.Errorf("watch %s: %w", w.kv.Bucket(), context.DeadlineExceeded)
	}
}

func (w *Watch) run(ctx context.Context, kw jetstream.KeyWatcher, stop context.CancelFunc) {
	defer close(w.done)
	for {
		why := w.follow(ctx, kw)
		_ = kw.Stop()
		stop()
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.restarts++
		w.lastErr = why
		w.mu.Unlock()
		w.cfg.Log.Warn("key-value watch lost; watching again", "bucket", w.kv.Bucket(), "reason", why)
		for n := 1; ; n++ {
			if !backoff.Sleep(ctx, w.cfg.Backoff.Jittered(n)) {
				return
			}
			var err error
			if kw, stop, err = w.watch(ctx); err == nil {
				break
			}
			w.mu.Lock()
			w.lastErr = fmt.Errorf("watch again: %w", err)
			w.mu.Unlock()
			w.cfg.Log.Warn("watch again", "bucket", w.kv.Bucket(), "error", err, "failures", n)
		}
		if w.cfg.Restarting != nil {
			w.cfg.Restarting()
		}
	}
}

// Why a watch is given up.
var (
	errClosed  = errors.New("the watcher's updates channel closed")
	errStalled = errors.New("the watch stayed behind the bucket's last revision")
)

// follow delivers kw's entries until ctx ends, kw's channel closes, or a
// check finds it behind what the bucket had at the previous check.
func (w *Watch) follow(ctx context.Context, kw jetstream.KeyWatcher) error {
	check := time.NewTicker(w.cfg.CheckEvery)
	defer check.Stop()
	var (
		seen   uint64 // the highest revision delivered
		want   uint64 // the bucket's last revision at the previous check
		synced bool
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-kw.Updates():
			if !ok {
				return errClosed
			}
			if e == nil {
				if !synced && w.cfg.Synced != nil {
					w.cfg.Synced()
				}
				synced = true
				continue
			}
			seen = max(seen, e.Revision())
			w.cfg.Entry(e)
		case <-check.C:
			if !synced {
				continue // the initial values may take a while
			}
			if want > seen {
				return fmt.Errorf("%w: revision %d delivered, %d stored", errStalled, seen, want)
			}
			last, err := w.last(ctx)
			if err != nil {
				// The cluster may be electing: the next check asks again.
				w.cfg.Log.Debug("check key-value watch", "bucket", w.kv.Bucket(), "error", err)
				continue
			}
			if len(w.cfg.Keys) == 0 && last < seen {
				// A stream's last sequence never goes back: the bucket
				// was made anew, and the watch waits for revisions it
				// will not see for a long time.
				return fmt.Errorf("%w: revision %d delivered, the bucket is back at %d", errStalled, seen, last)
			}
			want = last
		}
	}
}

// last is the bucket's last revision of the watched keys, 0 when it cannot
// be told.
func (w *Watch) last(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if len(w.cfg.Keys) == 0 {
		st, err := w.kv.Status(ctx)
		if err != nil {
			return 0, err
		}
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			return bs.StreamInfo().State.LastSeq, nil
		}
		return 0, nil
	}
	if w.cfg.JS == nil {
		return 0, nil
	}
	s, err := w.cfg.JS.Stream(ctx, "KV_"+w.kv.Bucket())
	if err != nil {
		return 0, err
	}
	var last uint64
	for _, k := range w.cfg.Keys {
		m, err := s.GetLastMsgForSubject(ctx, KeySubject(w.kv.Bucket(), k))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return 0, err
		default:
			last = max(last, m.Sequence)
		}
	}
	return last, nil
}

// ReadAll calls f with every entry kv holds now, in one pass: one watch
// rather than a Get per key (2,000 round trips for 2,000 stores). what names
// the read in its errors; f's error is returned as it is.
func ReadAll(ctx context.Context, kv jetstream.KeyValue, what string, f func(jetstream.KeyValueEntry) error) error {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New(what + ": watch closed")
			}
			if e == nil {
				return nil
			}
			if err := f(e); err != nil {
				return err
			}
		}
	}
}

// KeySubject is the subject a put to key of bucket is published on (no
// domain, no API prefix), and the subject of its messages in the bucket's
// stream.
func KeySubject(bucket, key string) string { return "$KV." + bucket + "." + key }
