package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// syncView is one kind of sync of one tenant, as `status` shows it.
type syncView struct {
	LastSuccessAt  *time.Time `json:"lastSuccessAt,omitempty"`
	LagSeconds     float64    `json:"lagSeconds"`
	Interval       string     `json:"interval,omitempty"`
	Stale          bool       `json:"stale"`
	Running        bool       `json:"running"`
	ItemsPublished int64      `json:"itemsPublished"`
	LastError      string     `json:"lastError,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
	Held           string     `json:"held,omitempty"`
}

// tenantStatus is one line of `status`.
type tenantStatus struct {
	Tenant      string               `json:"tenant"`
	State       string               `json:"state"`
	StateReason string               `json:"stateReason,omitempty"`
	Since       time.Time            `json:"since"`
	Syncs       map[string]*syncView `json:"syncs"`
}

// statusKinds are the columns of `status`, in order.
var statusKinds = []schedule.Kind{schedule.Catalog, schedule.Stock, schedule.Invoices}

func runStatus(ctx context.Context, e Env, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	onlyStreams := fs.Bool("streams", false, "only the streams' and buckets' usage against their bounds")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || *onlyStreams && len(pos) > 0 {
		return usagef("usage: hipersync status [tenant] | hipersync status --streams")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := connectNATS(e)
	if err != nil {
		return err
	}
	defer s.Close()
	if *onlyStreams {
		usage, err := events.Usage(ctx, s.js, s.ns)
		if err != nil {
			return fmt.Errorf("read stream usage: %w", err)
		}
		if *asJSON {
			return writeJSON(e.Stdout, usage)
		}
		return printUsage(e.Stdout, usage)
	}
	now := time.Now()
	views, err := s.status(ctx, now)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		var one []tenantStatus
		for _, v := range views {
			if v.Tenant == pos[0] {
				one = append(one, v)
			}
		}
		if len(one) == 0 {
			return fmt.Errorf("%w: %s", tenant.ErrUnknown, pos[0])
		}
		views = one
	}
	if *asJSON {
		return writeJSON(e.Stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(e.Stdout, "no tenants yet: connect one with `hipersync tenant connect <tenant> --key-file FILE`")
	} else if err := printTenants(e.Stdout, views, now); err != nil {
		return err
	}
	if len(pos) == 0 {
		// The whole deployment: how full its streams are.
		usage, err := events.Usage(ctx, s.js, s.ns)
		if err != nil {
			return fmt.Errorf("read stream usage: %w", err)
		}
		fmt.Fprintln(e.Stdout)
		return printUsage(e.Stdout, usage)
	}
	return nil
}

// printTenants writes one line per tenant: state, syncs, last error.
func printTenants(w io.Writer, views []tenantStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"TENANT", "STATE"}
	for _, k := range statusKinds {
		header = append(header, strings.ToUpper(string(k)))
	}
	fmt.Fprintln(tw, strings.Join(append(header, "LAST ERROR"), "\t"))
	for _, v := range views {
		cols := []string{v.Tenant, v.State}
		lastErr, lastAt := "", time.Time{}
		for _, k := range statusKinds {
			sv := v.Syncs[string(k)]
			cols = append(cols, describe(sv))
			if sv != nil && sv.LastError != "" && sv.LastErrorAt != nil && sv.LastErrorAt.After(lastAt) {
				lastErr, lastAt = string(k)+": "+sv.LastError, *sv.LastErrorAt
			}
		}
		if lastErr != "" {
			lastErr = fmt.Sprintf("%s ago, %s", roundAge(now.Sub(lastAt)), lastErr)
		}
		fmt.Fprintln(tw, strings.Join(append(cols, oneLineCut(lastErr, 100)), "\t"))
	}
	return tw.Flush()
}

// status joins each tenant's registry state with the pollers' status store.
func (s *streams) status(ctx context.Context, now time.Time) ([]tenantStatus, error) {
	byTenant := map[string]*tenantStatus{}
	kv, err := s.js.KeyValue(ctx, s.ns.Bucket(tenant.Bucket))
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return nil, fmt.Errorf("read tenants: %w", err)
	default:
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		for id := range keys.Keys() {
			entry, err := kv.Get(ctx, id)
			if err != nil {
				continue // deleted since listed
			}
			rec, err := tenant.DecodeRecord(entry.Value())
			if err != nil {
				return nil, err
			}
			t := rec.GetTenant()
			byTenant[id] = &tenantStatus{Tenant: id, State: tenant.StateName(t.GetState()), StateReason: t.GetStateReason(),
				Since: t.GetStateChangedAt().AsTime(), Syncs: map[string]*syncView{}}
		}
	}
	syncs, err := schedule.ListStatus(ctx, s.js, s.ns)
	if err != nil {
		return nil, err
	}
	for _, st := range syncs {
		ts := byTenant[st.Tenant]
		if ts == nil {
			// Polled once, since removed from the registry.
			ts = &tenantStatus{Tenant: st.Tenant, State: "unknown", Syncs: map[string]*syncView{}}
			byTenant[st.Tenant] = ts
		}
		v := &syncView{
			LagSeconds: st.Lag(now).Seconds(), Stale: st.Stale(now), Running: st.Running(now),
			ItemsPublished: st.ItemsPublished, LastError: st.LastError,
		}
		if iv := time.Duration(st.TargetInterval); iv > 0 {
			v.Interval = iv.String()
		}
		if !st.LastSuccessAt.IsZero() {
			at := st.LastSuccessAt
			v.LastSuccessAt = &at
		}
		if !st.LastErrorAt.IsZero() {
			at := st.LastErrorAt
			v.LastErrorAt = &at
		}
		if st.Held != nil {
			v.Held = st.Held.Summary
		}
		ts.Syncs[string(st.Kind)] = v
	}
	out := make([]tenantStatus, 0, len(byTenant))
	for _, ts := range byTenant {
		out = append(out, *ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out, nil
}

// describe is one sync's cell: how long ago it last succeeded against its
// interval, and whether something needs a person.
func describe(v *syncView) string {
	if v == nil {
		return "never"
	}
	var b strings.Builder
	switch {
	case v.LastSuccessAt == nil:
		b.WriteString("never ok")
	default:
		b.WriteString(roundAge(time.Duration(v.LagSeconds*float64(time.Second))) + " ago")
	}
	if v.Interval != "" {
		b.WriteString(" /" + v.Interval)
	}
	switch {
	case v.Held != "":
		b.WriteString(" HELD")
	case v.Stale:
		b.WriteString(" STALE")
	case v.Running:
		b.WriteString(" running")
	}
	return b.String()
}

func roundAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Hour).String()
	}
}

func oneLineCut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
