package tenant

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/backoff"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/kvwatch"
	"github.com/hipersync/hipersync/pkg/natstest"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// putTenant writes a tenant record as token-broker does.
func putTenant(t testing.TB, kv jetstream.KeyValue, id string, state brokerv1.TenantState) {
	t.Helper()
	b, err := EncodeRecord(&brokerv1.TenantRecord{Tenant: &brokerv1.Tenant{TenantId: id, State: state}})
	if err != nil {
		t.Fatal(err)
	}
	// Retried while a cluster elects a leader. Each attempt gets its own
	// few seconds: a request sent meanwhile (or while this connection moves
	// off a killed server) may never be answered.
	if !testkit.Until(30*time.Second, func() bool {
		attempt, done := context.WithTimeout(context.Background(), 3*time.Second)
		defer done()
		_, err = kv.Put(attempt, id, b)
		return err == nil
	}) {
		t.Fatalf("put tenant %s: %v", id, err)
	}
}

// waitState waits until d knows tenant id in state (0: gone).
func waitState(t testing.TB, d *Directory, id string, state brokerv1.TenantState, within time.Duration) {
	t.Helper()
	var tn *brokerv1.Tenant
	var ok bool
	if !testkit.Until(within, func() bool {
		tn, ok = d.Get(id)
		return state == 0 && !ok || ok && tn.GetState() == state
	}) {
		t.Fatalf("%s not %v within %s (known %v, %v)", id, state, within, ok, tn.GetState())
	}
}

// A bucket lost and made anew leaves the old watch waiting for revisions
// past the old stream's end; the directory notices that the bucket went back,
// watches again, and a tenant missing from the new bucket is gone from it,
// with a change said.
func TestDirectoryWatchesAgainWhenItsWatchFallsBehind(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testkit.NATSURL())
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", testkit.NATSURL(), err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bucket := fmt.Sprintf("test_rewatch_%d", time.Now().UnixNano())
	cfg := jetstream.KeyValueConfig{Bucket: bucket, Storage: jetstream.MemoryStorage}
	kv, err := js.CreateKeyValue(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), bucket) })
	putTenant(t, kv, "acme", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	putTenant(t, kv, "beta", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	d, err := watchDirectory(ctx, kv, slog.New(slog.DiscardHandler),
		kvwatch.Config{CheckEvery: 200 * time.Millisecond, Backoff: backoff.Exp{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan Change, 10)
	d.OnChange(func(c Change) { changes <- c })

	// The bucket is lost and made again without beta, acme paused.
	if err := js.DeleteKeyValue(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if kv, err = js.CreateKeyValue(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	putTenant(t, kv, "acme", brokerv1.TenantState_TENANT_STATE_PAUSED)
	waitState(t, d, "acme", brokerv1.TenantState_TENANT_STATE_PAUSED, 30*time.Second)
	waitState(t, d, "beta", 0, 20*time.Second)
	if d.watch.Restarts() == 0 {
		t.Error("the directory caught up without watching again")
	}
	// The directory tells its listeners after Get shows the new state:
	// the change may still be on its way.
	seen := map[string]bool{}
	if !testkit.Until(20*time.Second, func() bool {
		for len(changes) > 0 {
			c := <-changes
			seen[c.TenantID] = c.Tenant == nil
		}
		return seen["beta"]
	}) {
		t.Errorf("no change said beta is gone: %v", seen)
	}
	if err := d.Check(ctx); err != nil {
		t.Errorf("check while watching again: %v", err)
	}
	// And it goes on following.
	putTenant(t, kv, "gamma", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	waitState(t, d, "gamma", brokerv1.TenantState_TENANT_STATE_ACTIVE, 10*time.Second)
}

// On a three-node cluster the directory keeps following the tenants while
// the node leading their bucket is killed with -9 and restarted, twice: each
// change made while a node is down arrives within seconds.
func TestDirectoryAcrossANodeKill(t *testing.T) {
	t.Parallel()
	c, js, ctx := natstest.ThreeNodes(t, 3*time.Minute)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "tenants", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	putTenant(t, kv, "acme", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	// The directory's own connection, as a service has.
	_, djs := c.Connect(t)
	dkv, err := djs.KeyValue(ctx, "tenants")
	if err != nil {
		t.Fatal(err)
	}
	d, err := watchDirectory(ctx, dkv, slog.New(slog.DiscardHandler), kvwatch.Config{CheckEvery: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	states := []brokerv1.TenantState{brokerv1.TenantState_TENANT_STATE_PAUSED, brokerv1.TenantState_TENANT_STATE_ACTIVE}
	for round, state := range states {
		leader, err := c.StreamLeader(ctx, js, "KV_tenants")
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		leader.Kill()
		putTenant(t, kv, "acme", state)
		waitState(t, d, "acme", state, time.Minute)
		t.Logf("round %d: killed %s, the bucket's leader; the change arrived %s later (%d restarts)",
			round, leader.Name, time.Since(killed).Round(time.Millisecond), d.watch.Restarts())
		leader.Restart()
		c.WaitHealthy(t, time.Minute)
	}
	if err := d.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
}
