package web

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
)

// overviewTTL is how long the stores overview reuses its snapshot: with
// 2,000 stores, reading every status takes longer than a page may.
const overviewTTL = 5 * time.Second

// pageSize is how many stores the overview shows a page.
const pageSize = 100

type overviewCache struct {
	at         time.Time
	rows       []*adminv1.TenantStatus
	refreshing bool
}

// statuses returns the snapshot of every tenant's status. Only the first
// call waits for it; once it is older than overviewTTL, the page is served
// from it while one refresh runs in the background, so no page waits for
// the read of 2,000 stores' records (about 120 ms).
func (w *Web) statuses(q *req) ([]*adminv1.TenantStatus, error) {
	w.mu.Lock()
	rows, at, refreshing := w.overview.rows, w.overview.at, w.overview.refreshing
	stale := w.now().Sub(at) >= overviewTTL
	if rows != nil && stale && !refreshing {
		w.overview.refreshing = true
		go func() { _, _ = w.refresh(context.WithoutCancel(q.ctx)) }()
	}
	w.mu.Unlock()
	if rows != nil {
		return rows, nil
	}
	return w.refresh(q.ctx)
}

func (w *Web) refresh(ctx context.Context) ([]*adminv1.TenantStatus, error) {
	resp, err := w.d.Admin.GetStatus(ctx, &adminv1.GetStatusRequest{})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.overview.refreshing = false
	if err != nil {
		return nil, err
	}
	w.overview.at, w.overview.rows = w.now(), resp.GetTenants()
	return w.overview.rows, nil
}

// SetOverview replaces the overview's snapshot (benchmarks).
func (w *Web) SetOverview(rows []*adminv1.TenantStatus, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.overview = overviewCache{at: at, rows: rows}
}

// invalidate makes the overview's snapshot stale after a change, so the
// next overview refreshes it.
func (w *Web) invalidate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.overview.at = time.Time{}
}

type column struct {
	Key, Label, Href, Dir string
	Sorted                bool
}

type cell struct{ Text, Class string }

type storeRow struct {
	ID, State    string
	Syncs        []cell
	Held         bool
	Review, Dead int32
}

type storesData struct {
	Q, State, Sort     string
	Problems           bool
	States             []string
	Columns            []column
	Rows               []storeRow
	Total, Page, Pages int
	PrevHref, NextHref string
}

var syncKinds = []string{"catalog", "stock", "invoices"}

func (w *Web) stores(q *req) (string, string, string, any, error) {
	if !q.p.Operator() {
		return w.store(q)
	}
	all, err := w.statuses(q)
	if err != nil {
		return "stores", "stores", q.t("stores.title"), nil, err
	}
	qs := q.r.URL.Query()
	d := storesData{Q: strings.TrimSpace(qs.Get("q")), State: qs.Get("state"), Sort: qs.Get("sort"), Problems: qs.Get("problems") == "1",
		States: []string{"active", "paused", "not_connected", "invalid_key", "unknown"}}
	if d.Sort == "" {
		d.Sort = "store"
	}
	now := w.now()
	kept := make([]*adminv1.TenantStatus, 0, len(all))
	for _, t := range all {
		if d.Q != "" && !strings.Contains(t.GetTenantId(), strings.ToLower(d.Q)) {
			continue
		}
		if d.State != "" && t.GetState() != d.State {
			continue
		}
		if d.Problems && !troubled(t) {
			continue
		}
		kept = append(kept, t)
	}
	sortStores(kept, d.Sort)
	d.Total = len(kept)
	d.Pages = max(1, (d.Total+pageSize-1)/pageSize)
	d.Page, _ = strconv.Atoi(qs.Get("page"))
	d.Page = min(max(d.Page, 1), d.Pages)
	from, to := (d.Page-1)*pageSize, min(d.Page*pageSize, d.Total)
	for _, t := range kept[from:to] {
		row := storeRow{ID: t.GetTenantId(), State: t.GetState(), Review: t.GetOrdersInReview(), Dead: t.GetDeadLetters()}
		byKind := map[string]*adminv1.SyncStatus{}
		for _, s := range t.GetSyncs() {
			byKind[s.GetKind()] = s
			row.Held = row.Held || s.GetHeld() != ""
		}
		for _, k := range syncKinds {
			row.Syncs = append(row.Syncs, freshness(q.lang, byKind[k], now))
		}
		d.Rows = append(d.Rows, row)
	}
	link := func(mod func(url.Values)) string {
		v := url.Values{}
		for _, k := range []string{"q", "state", "problems", "sort"} {
			if x := qs.Get(k); x != "" {
				v.Set(k, x)
			}
		}
		mod(v)
		return "/?" + v.Encode()
	}
	for _, c := range [][2]string{{"store", "col.store"}, {"state", "col.state"}, {"catalog", "col.catalog"}, {"stock", "col.stock"},
		{"invoices", "col.invoices"}, {"held", "col.held"}, {"review", "col.review"}, {"dlq", "col.dlq"}} {
		col := column{Key: c[0], Label: c[1]}
		next := c[0]
		switch d.Sort {
		case c[0]:
			col.Sorted, col.Dir, next = true, "ascending", "-"+c[0]
		case "-" + c[0]:
			col.Sorted, col.Dir = true, "descending"
		}
		col.Href = link(func(v url.Values) { v.Set("sort", next) })
		d.Columns = append(d.Columns, col)
	}
	if d.Page > 1 {
		d.PrevHref = link(func(v url.Values) { v.Set("page", strconv.Itoa(d.Page-1)) })
	}
	if d.Page < d.Pages {
		d.NextHref = link(func(v url.Values) { v.Set("page", strconv.Itoa(d.Page+1)) })
	}
	return "stores", "stores", q.t("stores.title"), d, nil
}

// troubled reports whether a store needs a person: not active, a sync late
// or held, orders in review, dead letters.
func troubled(t *adminv1.TenantStatus) bool {
	if t.GetState() != "active" || t.GetOrdersInReview() > 0 || t.GetDeadLetters() > 0 {
		return true
	}
	for _, s := range t.GetSyncs() {
		if s.GetStale() || s.GetHeld() != "" || s.GetLastError() != "" && s.GetLastErrorAt().AsTime().After(s.GetLastSuccessAt().AsTime()) {
			return true
		}
	}
	return false
}

// lagOf is a sync's lag for sorting; never synced sorts last.
func lagOf(t *adminv1.TenantStatus, kind string) time.Duration {
	for _, s := range t.GetSyncs() {
		if s.GetKind() == kind && s.GetLastSuccessAt() != nil {
			return s.GetLag().AsDuration()
		}
	}
	return 1 << 62
}

func heldOf(t *adminv1.TenantStatus) int {
	for _, s := range t.GetSyncs() {
		if s.GetHeld() != "" {
			return 1
		}
	}
	return 0
}

func sortStores(ts []*adminv1.TenantStatus, by string) {
	desc := strings.HasPrefix(by, "-")
	by = strings.TrimPrefix(by, "-")
	key := func(a, b *adminv1.TenantStatus) int {
		switch by {
		case "state":
			return cmp.Compare(a.GetState(), b.GetState())
		case "catalog", "stock", "invoices":
			return cmp.Compare(lagOf(a, by), lagOf(b, by))
		case "held":
			return cmp.Compare(heldOf(a), heldOf(b))
		case "review":
			return cmp.Compare(a.GetOrdersInReview(), b.GetOrdersInReview())
		case "dlq":
			return cmp.Compare(a.GetDeadLetters(), b.GetDeadLetters())
		}
		return 0
	}
	slices.SortStableFunc(ts, func(a, b *adminv1.TenantStatus) int {
		c := key(a, b)
		if desc {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(a.GetTenantId(), b.GetTenantId())
		}
		return c
	})
}

// freshness is a sync's cell: how long since it last succeeded against
// its target, and whether it is late, held or running.
func freshness(l lang, s *adminv1.SyncStatus, now time.Time) cell {
	if s == nil || s.GetLastSuccessAt() == nil {
		return cell{Text: l.text("fresh.never"), Class: "never"}
	}
	text := fmt.Sprintf(l.text("fresh.ago"), roundAge(now.Sub(s.GetLastSuccessAt().AsTime())))
	switch {
	case s.GetExpectInterval() != nil && s.GetTargetInterval() != nil:
		text += " · " + fmt.Sprintf(l.text("fresh.target.expect"), shortDuration(s.GetExpectInterval().AsDuration()),
			shortDuration(s.GetTargetInterval().AsDuration()))
	case s.GetTargetInterval() != nil:
		text += " · " + fmt.Sprintf(l.text("fresh.target"), shortDuration(s.GetTargetInterval().AsDuration()))
	}
	c := cell{Text: text, Class: "ok"}
	switch {
	case s.GetHeld() != "":
		c.Text += " · " + l.text("fresh.held")
		c.Class = "held"
	case s.GetStale():
		c.Text += " · " + l.text("fresh.stale")
		c.Class = "late"
	case s.GetRunning():
		c.Text += " · " + l.text("fresh.running")
	}
	return c
}

func roundAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return shortDuration(d.Round(time.Second))
	case d < time.Hour:
		return shortDuration(d.Round(time.Minute))
	default:
		return shortDuration(d.Round(time.Hour))
	}
}

// shortDuration drops a duration's zero tails: 5m, not 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
