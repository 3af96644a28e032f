package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// errOutage is why an order waits while its circuit is open.
var errOutage = errors.New("hiper is failing every call: waiting for a probe to get through")

// circuit is the state of one scope's calls to Hiper. Closed, calls flow;
// after CircuitThreshold failures in a row it opens: no order is sent
// (none spends an attempt) but one probe at a time, the first order to
// come back after nextProbe, with the probe's wait doubling up to
// CircuitProbeMax. A probe that gets Hiper's answer closes it.
type circuit struct {
	fails   int
	tenants map[string]bool // tenants among the failures in a row (endpoint scope)
	open    bool
	since   time.Time
	next    time.Time
	wait    time.Duration
	probing bool
	lastErr string
}

// circuits are a replica's circuits to Hiper: one for the create
// endpoint, one per tenant.
type circuits struct {
	cfg     Config
	now     func() time.Time
	owner   string
	tenants func() int // how many tenants are known: one alone can open the endpoint's circuit
	gauge   *prometheus.GaugeVec
	note    func(o ops.Outage, open bool)

	mu       sync.Mutex
	endpoint circuit
	byTenant map[string]*circuit
}

func newCircuits(cfg Config, now func() time.Time, owner string, tenants func() int, gauge *prometheus.GaugeVec, note func(ops.Outage, bool)) *circuits {
	return &circuits{cfg: cfg, now: now, owner: owner, tenants: tenants, gauge: gauge, note: note,
		byTenant: map[string]*circuit{}}
}

// ticket is one order's admission to call Hiper; probe marks the call that
// tests an open circuit. Exactly one of its methods should be called; each
// is safe to call more than once.
type ticket struct {
	c      *circuits
	tenant string
	probe  *circuit
	done   bool
}

// admit lets an order of tenant call Hiper, or says how long it should
// wait for the next probe.
func (cs *circuits) admit(tenant string) (*ticket, time.Duration) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := cs.now()
	t := &ticket{c: cs, tenant: tenant}
	for _, c := range []*circuit{&cs.endpoint, cs.byTenant[tenant]} {
		if c == nil || !c.open {
			continue
		}
		if c.probing || now.Before(c.next) {
			// Come back just after the next probe is due, spread a little
			// so the waiting orders do not all wake at once.
			d := max(c.next.Sub(now), 0) + cs.cfg.CircuitProbeBase/4
			return nil, d + rand.N(cs.cfg.CircuitProbeBase/4+1)
		}
		c.probing = true
		t.probe = c
		return t, 0
	}
	return t, 0
}

// release gives the admission back unused (the order did not call Hiper).
func (t *ticket) release() {
	if t == nil || t.done {
		return
	}
	t.done = true
	if t.probe != nil {
		t.c.mu.Lock()
		t.probe.probing = false
		t.c.mu.Unlock()
	}
}

// answered records that Hiper answered (an id, or its own refusal): the
// scopes are up.
func (t *ticket) answered() {
	if t == nil || t.done {
		return
	}
	t.done = true
	cs := t.c
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range []*circuit{&cs.endpoint, cs.byTenant[t.tenant]} {
		if c == nil {
			continue
		}
		if c.open {
			cs.setOpen(c, t.tenant, false)
		}
		*c = circuit{}
	}
}

// failed records a failure of Hiper (or of getting to it) and reports
// whether it is the order's own: false when the circuit is open, or the
// failure opened it, so the order spends no attempt on an outage.
func (t *ticket) failed(err error) (own bool) {
	if t == nil || t.done {
		return true
	}
	t.done = true
	if !outageClass(err) {
		t.release()
		return true
	}
	cs := t.c
	cs.mu.Lock()
	defer cs.mu.Unlock()
	tc := cs.byTenant[t.tenant]
	if tc == nil {
		tc = &circuit{}
		cs.byTenant[t.tenant] = tc
	}
	scopes := []*circuit{tc}
	if _, ok := errors.AsType[*hiper.Error](err); ok {
		scopes = append(scopes, &cs.endpoint)
	}
	own = true
	for _, c := range scopes {
		c.fails++
		c.lastErr = shortError(err)
		if c == &cs.endpoint {
			if c.tenants == nil {
				c.tenants = map[string]bool{}
			}
			c.tenants[t.tenant] = true
		}
		switch {
		case c.open:
			// A failed probe (or a call admitted before it opened).
			if c == t.probe {
				c.probing = false
				c.wait = min(2*c.wait, cs.cfg.CircuitProbeMax)
				c.next = cs.now().Add(c.wait)
				cs.refresh(c, t.tenant)
			}
			own = false
		case c.fails >= cs.cfg.CircuitThreshold && (c != &cs.endpoint || len(c.tenants) >= min(2, max(cs.tenants(), 1))):
			c.since, c.wait = cs.now(), cs.cfg.CircuitProbeBase
			c.next = c.since.Add(c.wait)
			cs.setOpen(c, t.tenant, true)
			own = false
		}
	}
	return own
}

// outageClass reports whether a failure says Hiper (or the way to it) is
// failing, rather than this order or tenant's configuration: not a 429
// (Hiper pacing a tenant, with its own Retry-After), not a paused or
// unknown tenant.
func outageClass(err error) bool {
	switch {
	case errors.Is(err, hiper.ErrRateLimited), errors.Is(err, tenant.ErrPaused), errors.Is(err, tenant.ErrUnknown),
		errors.Is(err, hiper.ErrRejected):
		return false
	}
	return true
}

func (cs *circuits) name(c *circuit, tenantID string) (scope, name, label string) {
	if c == &cs.endpoint {
		return ops.ScopeEndpoint, hiperEndpointCreate, ""
	}
	return ops.ScopeTenant, tenantID, tenantID
}

func (cs *circuits) setOpen(c *circuit, tenantID string, open bool) {
	c.open = open
	scope, name, label := cs.name(c, tenantID)
	v := 0.0
	if open {
		v = 1
	}
	cs.gauge.WithLabelValues(scope, label).Set(v)
	cs.note(ops.Outage{Scope: scope, Name: name, Since: c.since.UTC(), NextProbe: c.next.UTC(), LastError: c.lastErr, Replica: cs.owner}, open)
}

func (cs *circuits) refresh(c *circuit, tenantID string) {
	scope, name, _ := cs.name(c, tenantID)
	cs.note(ops.Outage{Scope: scope, Name: name, Since: c.since.UTC(), NextProbe: c.next.UTC(), LastError: c.lastErr, Replica: cs.owner}, true)
}

// hiperEndpointCreate names the endpoint whose circuit ops.ScopeEndpoint is.
const hiperEndpointCreate = "POST /pedido-de-venda/"

// outageNotes writes the outages a replica sees to ops.OutageBucket, in the
// background and in order, so a slow bucket never holds up a handler.
type outageNotes struct {
	kv  jetstream.KeyValue
	log interface {
		Warn(msg string, args ...any)
	}
	mu    sync.Mutex
	queue []outageNote
	wake  chan struct{}
}

type outageNote struct {
	o    ops.Outage
	open bool
}

func openOutageNotes(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (jetstream.KeyValue, error) {
	return events.EnsureKV(ctx, js, ns, ops.OutageBucket, events.WithKVTTL(ops.OutageTTL),
		events.WithKVDescription("hipersync order-forwarder: Hiper outages each replica sees, <scope>.<name>.<replica>"))
}

func (n *outageNotes) add(o ops.Outage, open bool) {
	n.mu.Lock()
	n.queue = append(n.queue, outageNote{o, open})
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run writes the notes until ctx ends.
func (n *outageNotes) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		n.mu.Lock()
		q := n.queue
		n.queue = nil
		n.mu.Unlock()
		for _, note := range q {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var err error
			if note.open {
				b, _ := json.Marshal(note.o)
				_, err = n.kv.Put(wctx, ops.OutageKey(note.o), b)
			} else {
				err = n.kv.Delete(wctx, ops.OutageKey(note.o))
			}
			cancel()
			if err != nil && ctx.Err() == nil {
				n.log.Warn("note a Hiper outage for hipersync status", "scope", note.o.Scope, "name", note.o.Name, "error", err)
			}
		}
	}
}
