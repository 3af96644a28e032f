package cli

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// syncPollers runs a catalog and a stock scheduler whose jobs record the
// requests they serve: the catalog job holds every run not approved, and
// the stock job fails while fail is set.
type syncPollers struct {
	mu     sync.Mutex
	served map[syncstatus.Kind][]syncstatus.Request
	fail   bool
}

func startSyncPollers(t *testing.T, st *brokertest.Stack) *syncPollers {
	t.Helper()
	p := &syncPollers{served: map[syncstatus.Kind][]syncstatus.Request{}}
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := tenant.WatchDirectory(ctx, st.Tenants(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	client, _ := hiper.New(st.Sim.URL)
	var wg sync.WaitGroup
	for _, k := range syncstatus.Kinds {
		s, err := schedule.New(ctx, schedule.Config{
			Kind: k, JS: st.JS, Namespace: st.NS, Directory: dir, Hiper: client, Tokens: st.Broker.Source,
			Job:     schedule.JobFunc(func(ctx context.Context, r *schedule.Run) error { return p.run(ctx, r) }),
			Options: schedule.Options{Interval: time.Hour, Grace: -1, FirstRunSpread: time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = s.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); testkit.Wait(t, &wg, 30*time.Second, "the pollers to stop") })
	return p
}

func (p *syncPollers) run(ctx context.Context, r *schedule.Run) error {
	p.mu.Lock()
	fail := p.fail
	if r.Request != nil {
		p.served[r.Kind] = append(p.served[r.Kind], *r.Request)
	}
	p.mu.Unlock()
	if r.Kind == syncstatus.Stock && fail {
		return errors.New("hiper answered 503")
	}
	return r.Save(ctx, func(s *syncstatus.Status) {
		s.InitialDone = true
		s.Held = nil
		if r.Kind == syncstatus.Catalog && !r.Approve && r.Request != nil {
			s.Held = &syncstatus.Held{Summary: "12 of 40 products would be deactivated", Counts: map[string]int64{"deactivated": 12}}
		}
	})
}

func (p *syncPollers) requests(k syncstatus.Kind) []syncstatus.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syncstatus.Request(nil), p.served[k]...)
}

func TestSyncCommand(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	p := startSyncPollers(t, st)
	env := st.Env()
	sync := func(args ...string) result {
		t.Helper()
		return runEnv(t, env, append([]string{"sync"}, args...)...)
	}

	// Nothing held yet: nothing to approve.
	if r := sync("acme", "--approve"); r.code != 1 || !strings.Contains(r.stderr, "nothing to approve") {
		t.Fatalf("approve with nothing held: %+v", r)
	}
	// The stock poll; --product refreshes stock and goes with it.
	r := sync("acme", "--product", "p1", "--product", "p2")
	if r.code != 0 || !strings.Contains(r.stdout, "stock") || strings.Contains(r.stdout, "catalog") || !strings.Contains(r.stdout, "ok") {
		t.Fatalf("sync --product: %+v", r)
	}
	if got := p.requests(syncstatus.Stock); len(got) != 1 || strings.Join(got[0].Products, ",") != "p1,p2" {
		t.Fatalf("stock poller served %v", got)
	}
	// Both polls, full, as JSON: the catalog comes back held.
	r = sync("acme", "--full", "--json")
	var results []ops.SyncResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &results) != nil || len(results) != 2 {
		t.Fatalf("sync --full --json: %+v", r)
	}
	for _, res := range results {
		want := map[syncstatus.Kind]string{syncstatus.Catalog: "held", syncstatus.Stock: "ok"}[res.Kind]
		if res.Outcome != want || !res.Request.Full || res.Status == nil {
			t.Fatalf("%s: %+v, want %s", res.Kind, res, want)
		}
	}
	// Approving releases the catalog only: the stock poll holds nothing.
	r = sync("acme", "--approve")
	if r.code != 0 || !strings.Contains(r.stdout, "catalog") || strings.Contains(r.stdout, "stock") || !strings.Contains(r.stdout, "ok") {
		t.Fatalf("sync --approve: %+v", r)
	}
	if got := p.requests(syncstatus.Catalog); !got[len(got)-1].Approve {
		t.Fatalf("the catalog poller was not asked to approve: %v", got)
	}
	if r := sync("acme", "--stock", "--approve"); r.code != 1 || !strings.Contains(r.stderr, "stock sync of acme is held") {
		t.Fatalf("approve an unheld stock sync: %+v", r)
	}

	// A failing poll: exit 1, with Hiper's reason.
	p.mu.Lock()
	p.fail = true
	p.mu.Unlock()
	if r := sync("acme", "--stock"); r.code != 1 || !strings.Contains(r.stderr, "503") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("failing sync: %+v", r)
	}

	// Without waiting.
	if r := sync("beta", "--catalog", "--no-wait"); r.code != 0 || !strings.Contains(r.stdout, "requested") {
		t.Fatalf("sync --no-wait: %+v", r)
	}
	// A paused tenant syncs nothing; an unknown one does not exist.
	if _, err := st.Broker.Tenants.PauseTenant(context.Background(), &brokerv1.PauseTenantRequest{TenantId: "beta"}); err != nil {
		t.Fatal(err)
	}
	if r := sync("beta"); r.code != 1 || !strings.Contains(r.stderr, "paused") {
		t.Fatalf("sync a paused tenant: %+v", r)
	}
	if r := sync("nobody"); r.code != 1 || !strings.Contains(r.stderr, "not registered") {
		t.Fatalf("sync an unknown tenant: %+v", r)
	}
	for _, args := range [][]string{{}, {"acme", "beta"}, {"acme", "--catalog", "--product", "p1"}, {"Not Valid"}} {
		if r := sync(args...); r.code != 2 {
			t.Fatalf("sync %v: %+v, want a usage error", args, r)
		}
	}
}
