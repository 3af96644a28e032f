package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/natstest"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// A node of a three-node cluster killed with -9 while a run saves its
// cursor costs the tenant seconds, not minutes: the replicas see the status
// again, the lease is taken again, and a run that was asked for runs.
func TestSchedulerAcrossANodeKill(t *testing.T) {
	c, js, ctx := natstest.ThreeNodes(t, 10*time.Minute)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := events.Namespace{Prefix: "sk" + hex.EncodeToString(b), Replicas: 3}
	tenants, err := events.EnsureKV(ctx, js, ns, tenant.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, js: js, ns: ns, tenants: tenants}
	e.setTenant("acme", active, nil)
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("SCHEDULE_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var mu sync.Mutex
	var done []time.Time
	for r := range 2 {
		_, rjs := c.Connect(t)
		rctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		rkv, err := events.EnsureKV(rctx, rjs, ns, tenant.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		dir, err := tenant.WatchDirectory(rctx, rkv, log)
		if err != nil {
			t.Fatal(err)
		}
		client, _ := hiper.New("http://127.0.0.1:1/api/v1")
		s, err := New(rctx, Config{
			Kind: syncstatus.Stock, JS: rjs, Namespace: ns, Directory: dir, Hiper: client, Log: log.With("r", r),
			Tokens: func(string) hiper.TokenSource { return staticTokens{} },
			Job: JobFunc(func(ctx context.Context, run *Run) error {
				// A run saves its cursor after each of a few batches.
				for range 5 {
					if err := run.Save(ctx, func(s *syncstatus.Status) { s.Cursor++ }); err != nil {
						return err
					}
					time.Sleep(20 * time.Millisecond)
				}
				mu.Lock()
				done = append(done, time.Now())
				mu.Unlock()
				return nil
			}),
			Options: Options{Interval: 300 * time.Millisecond, LeaseTTL: 5 * time.Second, BackoffBase: 200 * time.Millisecond,
				BackoffMax: 2 * time.Second, Grace: -1},
		})
		if err != nil {
			t.Fatal(err)
		}
		stopped := make(chan struct{})
		go func() { _ = s.Run(rctx); close(stopped) }()
		t.Cleanup(func() { cancel(); testkit.Recv(t, stopped, 30*time.Second, "the scheduler to stop") })
	}
	runsSince := func(at time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, d := range done {
			if d.After(at) {
				n++
			}
		}
		return n
	}
	testkit.WaitFor(t, 30*time.Second, "runs", func() bool { return runsSince(time.Time{}) >= 3 })
	for round := range 3 {
		leader, err := c.StreamLeader(ctx, js, "KV_"+ns.Bucket(syncstatus.StatusBucket))
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		leader.Kill()
		testkit.WaitFor(t, 2*time.Minute, "a run after the kill", func() bool { return runsSince(killed) >= 2 })
		t.Logf("round %d: killed %s, the status bucket's leader; a run finished %s later", round, leader.Name, time.Since(killed))
		leader.Restart()
		c.WaitHealthy(t, time.Minute)
	}
}
