package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/tenant"
)

const syncUsage = `usage:
  hipersync sync <tenant> [--catalog] [--stock] [--full] [--approve] [--product ID ...] [--no-wait] [--timeout D]
    runs the tenant's catalog and stock polls now (only one with --catalog or --stock);
    --full re-reads the whole catalog, publishing only what really changed;
    --approve releases a mass change the guardrail holds;
    --product refreshes a product's stock from Hiper's stock endpoint (repeatable)`

// products is a repeatable --product flag.
type products []string

func (p *products) String() string { return strings.Join(*p, ",") }

func (p *products) Set(v string) error {
	for _, id := range strings.Split(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*p = append(*p, id)
		}
	}
	return nil
}

// syncResult is one kind's outcome, as `sync --json` prints it.
type syncResult struct {
	Kind    schedule.Kind    `json:"kind"`
	Request schedule.Request `json:"request"`
	// Outcome is requested (--no-wait), ok, held, failed or timeout.
	Outcome string           `json:"outcome"`
	Status  *schedule.Status `json:"status,omitempty"`
}

func runSync(ctx context.Context, e Env, args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	catalog := fs.Bool("catalog", false, "the catalog poll")
	stock := fs.Bool("stock", false, "the stock poll")
	full := fs.Bool("full", false, "a full resync")
	approve := fs.Bool("approve", false, "release a held mass change")
	noWait := fs.Bool("no-wait", false, "return once the sync is asked for")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the pollers")
	var refresh products
	fs.Var(&refresh, "product", "refresh this product's stock (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("sync: want one tenant, got %d arguments\n%s", len(pos), syncUsage)
	}
	id := pos[0]
	if err := events.ValidTenant(id); err != nil {
		return usagef("sync: %v", err)
	}
	if len(refresh) > 0 && *catalog {
		return usagef("sync: --product refreshes stock; it does not go with --catalog")
	}
	kinds := schedule.Kinds
	switch {
	case *catalog && *stock:
	case *catalog:
		kinds = []schedule.Kind{schedule.Catalog}
	case *stock, len(refresh) > 0:
		kinds = []schedule.Kind{schedule.Stock}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := connectNATS(e)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := checkSyncs(ctx, s, id); err != nil {
		return err
	}
	if *approve {
		explicit := *catalog || *stock
		if kinds, err = heldKinds(ctx, s, id, kinds, explicit); err != nil {
			return err
		}
	}

	results := make([]syncResult, len(kinds))
	for i, k := range kinds {
		r := schedule.Request{Full: *full, Approve: *approve}
		if k == schedule.Stock {
			r.Products = refresh
		}
		if results[i].Request, err = schedule.RequestSync(ctx, s.js, s.ns, id, k, r); err != nil {
			return err
		}
		results[i].Kind, results[i].Outcome = k, "requested"
	}
	if !*noWait {
		// The kinds are read before the waits start writing the results.
		kinds := make([]schedule.Kind, len(results))
		for i, r := range results {
			kinds[i] = r.Kind
		}
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() { results[i].wait(ctx, s, id) })
		}
		stop := make(chan struct{})
		if !*asJSON {
			go showProgress(ctx, e.Stderr, s, id, kinds, 2*time.Second, stop)
		}
		wg.Wait()
		close(stop)
	}
	if *asJSON {
		if err := writeJSON(e.Stdout, results); err != nil {
			return err
		}
	} else if err := writeSyncTable(e.Stdout, id, results); err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		switch r.Outcome {
		case "failed":
			failed = append(failed, fmt.Sprintf("the %s sync failed (%s); the poller retries it", r.Kind, r.Status.LastError))
		case "timeout":
			failed = append(failed, fmt.Sprintf("no %s-poller ran the %s sync within %s; is one running?", r.Kind, r.Kind, *timeout))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// wait waits until a poller ran the request, and records how it went.
func (r *syncResult) wait(ctx context.Context, s *streams, id string) {
	st, err := schedule.WaitServed(ctx, s.js, s.ns, id, r.Kind, r.Request)
	switch {
	case err != nil:
		r.Outcome = "timeout"
		return
	case st.LastRequest != r.Request.ID && !st.LastRequestAt.After(r.Request.At):
		r.Outcome = "failed"
	case st.Held != nil:
		r.Outcome = "held"
	default:
		r.Outcome = "ok"
	}
	r.Status = &st
}

// checkSyncs fails unless the tenant is registered and active: a request
// for a paused tenant would wait for nothing.
func checkSyncs(ctx context.Context, s *streams, id string) error {
	kv, err := s.js.KeyValue(ctx, s.ns.Bucket(tenant.Bucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("tenant %s: %w", id, tenant.ErrUnknown)
	}
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	entry, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("tenant %s: %w", id, tenant.ErrUnknown)
	}
	if err != nil {
		return fmt.Errorf("read tenant %s: %w", id, err)
	}
	rec, err := tenant.DecodeRecord(entry.Value())
	if err != nil {
		return err
	}
	if st := rec.GetTenant().GetState(); !tenant.Syncs(st) {
		return fmt.Errorf("tenant %s is %s: nothing syncs until it is active", id, tenant.StateName(st))
	}
	return nil
}

// heldKinds keeps the kinds whose sync the guardrail holds; asked for
// explicitly, each must be.
func heldKinds(ctx context.Context, s *streams, id string, kinds []schedule.Kind, explicit bool) ([]schedule.Kind, error) {
	var held []schedule.Kind
	for _, k := range kinds {
		st, _, err := schedule.GetStatus(ctx, s.js, s.ns, id, k)
		if err != nil {
			return nil, err
		}
		switch {
		case st.Held != nil:
			held = append(held, k)
		case explicit:
			return nil, fmt.Errorf("nothing of the %s sync of %s is held", k, id)
		}
	}
	if len(held) == 0 {
		return nil, fmt.Errorf("nothing of %s is held: there is nothing to approve", id)
	}
	return held, nil
}

func writeSyncTable(w io.Writer, id string, results []syncResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tKIND\tOUTCOME\tPUBLISHED\tCURSOR\tDETAIL")
	for _, r := range results {
		published, cursor, detail := "-", "-", ""
		if st := r.Status; st != nil {
			published, cursor = fmt.Sprint(st.LastPublished), fmt.Sprint(st.Cursor)
			switch r.Outcome {
			case "failed":
				detail = st.LastError
			case "held":
				detail = st.Held.Summary
			}
		}
		if r.Outcome == "requested" {
			detail = "request " + r.Request.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", id, r.Kind, r.Outcome, published, cursor, detail)
	}
	return tw.Flush()
}

// showProgress prints, every so often until stop, how the tenant's syncs
// are going, so a long run (a full resync of a large catalog) is not silent.
func showProgress(ctx context.Context, w io.Writer, s *streams, id string, kinds []schedule.Kind, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	began := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var parts []string
		for _, k := range kinds {
			st, ok, err := schedule.GetStatus(ctx, s.js, s.ns, id, k)
			switch {
			case err != nil || !ok:
				parts = append(parts, string(k)+": waiting for a poller")
			case st.FullRunning:
				parts = append(parts, fmt.Sprintf("%s: full resync at sync point %d of %s's feed, %d products known", k, st.FullCursor, id, st.Products))
			case st.Running(time.Now()):
				parts = append(parts, fmt.Sprintf("%s: running (%s)", k, st.Lease.Owner))
			default:
				parts = append(parts, string(k)+": queued")
			}
		}
		fmt.Fprintf(w, "%s  %s\n", time.Since(began).Round(time.Second), strings.Join(parts, "; "))
	}
}
