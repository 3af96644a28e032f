package watcher

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
)

// statusEvery is how often the watcher writes what it saw of each tenant to
// the sync status store: often enough for `hipersync status`, without a
// write per poll.
const statusEvery = 5 * time.Second

// tenantPolls is what one replica saw of one tenant since its last flush.
type tenantPolls struct {
	lastOK    time.Time
	published int64
	lastErr   string
	lastErrAt time.Time
}

// statusReporter reports, per tenant, when an order of the tenant was last
// polled successfully, how many events were published and the last failure,
// into the pollers' sync status store under kind "invoices", so that
// `hipersync status` shows invoices beside catalog and stock.
type statusReporter struct {
	kv jetstream.KeyValue
	// interval is the schedule's ceiling (every order is polled at least
	// this often, the lag's target), expect that of the orders expecting
	// their invoice.
	interval, expect time.Duration
	log              *slog.Logger

	mu       sync.Mutex
	byTenant map[string]*tenantPolls
}

func newStatusReporter(kv jetstream.KeyValue, sch order.Schedule, log *slog.Logger) *statusReporter {
	return &statusReporter{kv: kv, interval: sch.Max, expect: sch.Expect, log: log, byTenant: map[string]*tenantPolls{}}
}

func (r *statusReporter) tenant(id string) *tenantPolls {
	p := r.byTenant[id]
	if p == nil {
		p = &tenantPolls{}
		r.byTenant[id] = p
	}
	return p
}

// polled records a successful poll of one of the tenant's orders.
func (r *statusReporter) polled(tenantID string, at time.Time, published int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.tenant(tenantID)
	p.lastOK = at
	p.published += int64(published)
}

// failed records a poll that failed.
func (r *statusReporter) failed(tenantID string, at time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.tenant(tenantID)
	p.lastErr, p.lastErrAt = err.Error(), at
}

// run flushes every statusEvery until ctx is done, then once more.
func (r *statusReporter) run(ctx context.Context) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			r.flush(fctx)
			cancel()
			return
		case <-t.C:
			r.flush(ctx)
		}
	}
}

// flush merges what was seen into each tenant's record: the latest times
// win, counts add up, so replicas' reports combine.
func (r *statusReporter) flush(ctx context.Context) {
	r.mu.Lock()
	seen := r.byTenant
	r.byTenant = map[string]*tenantPolls{}
	r.mu.Unlock()
	for id, p := range seen {
		err := syncstatus.UpdateStatus(ctx, r.kv, id, syncstatus.Invoices, func(st *syncstatus.Status) {
			st.TargetInterval = syncstatus.Duration(r.interval)
			st.ExpectInterval = syncstatus.Duration(r.expect)
			if p.lastOK.After(st.LastSuccessAt) {
				st.LastSuccessAt, st.LastRunAt = p.lastOK, p.lastOK
			}
			st.ItemsPublished += p.published
			st.LastPublished = p.published
			if p.lastErrAt.After(st.LastErrorAt) {
				st.LastError, st.LastErrorAt = p.lastErr, p.lastErrAt
			}
		})
		if err != nil {
			r.log.Warn("report invoice status", "tenant", id, "error", err)
		}
	}
}
