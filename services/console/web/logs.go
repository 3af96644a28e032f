package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/services/console/admin"
)

type logRow struct {
	ISO     string `json:"iso"`
	When    string `json:"when"`
	Tenant  string `json:"tenant"`
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
}

type logData struct {
	Tenant, Kind, Source, Since, Contains string
	Sources                               []string
	Events                                []logRow
	StreamURL                             string
	// Capped is the page's limit when it showed that many: there may be
	// more, which the filters reach.
	Capped int
}

// Limits of the log and audit pages: the newest so many.
const (
	logPageSize   = 300
	auditPageSize = 300
)

// capped is limit when a page got limit rows (there may be more), else 0.
func capped(rows, limit int) int {
	if rows >= limit {
		return limit
	}
	return 0
}

// filter reads the log page's filters.
func logFilter(q *req) (*adminv1.EventFilter, logData) {
	v := q.r.URL.Query()
	d := logData{Tenant: v.Get("tenant"), Kind: v.Get("kind"), Source: v.Get("source"), Since: v.Get("since"), Contains: v.Get("contains"),
		Sources: []string{"all", "store", "hiper"}}
	if d.Source == "" {
		d.Source = "all"
	}
	if d.Since == "" {
		d.Since = "1h"
	}
	f := &adminv1.EventFilter{TenantId: d.Tenant, Kind: d.Kind, Contains: d.Contains}
	if since, err := time.ParseDuration(d.Since); err == nil {
		f.Since = durationpb.New(since)
	}
	switch d.Source {
	case "store":
		f.Source = adminv1.EventSource_EVENT_SOURCE_STORE
	case "hiper":
		f.Source = adminv1.EventSource_EVENT_SOURCE_HIPER
	}
	return f, d
}

func rowOf(e *adminv1.LogEvent) logRow {
	summary := e.GetSummary()
	if e.GetError() != "" {
		summary = "undecodable: " + e.GetError()
	}
	return logRow{ISO: e.GetTime().AsTime().UTC().Format(time.RFC3339), When: when(e.GetTime()), Tenant: e.GetTenantId(), Kind: e.GetKind(), Summary: summary}
}

func (w *Web) syncLog(q *req) (string, string, string, any, error) {
	f, d := logFilter(q)
	live := url.Values{}
	for _, k := range []string{"tenant", "kind", "source", "contains"} {
		if v := q.r.URL.Query().Get(k); v != "" {
			live.Set(k, v)
		}
	}
	d.StreamURL = "/log/stream?" + live.Encode()
	resp, err := w.d.Admin.QueryEvents(q.ctx, &adminv1.QueryEventsRequest{Filter: f, Limit: logPageSize})
	if err != nil {
		return "log", "log", q.t("log.title"), d, err
	}
	evs := resp.GetEvents()
	d.Capped = capped(len(evs), logPageSize)
	for i := len(evs) - 1; i >= 0; i-- {
		d.Events = append(d.Events, rowOf(evs[i]))
	}
	return "log", "log", q.t("log.title"), d, nil
}

// logStream sends each new event of the filter as a server-sent event.
func (w *Web) logStream(rw http.ResponseWriter, q *req) {
	f, _ := logFilter(q)
	f.Since = durationpb.New(time.Nanosecond) // from now on
	lf, err := admin.Filter(q.ctx, f, time.Now())
	if err != nil {
		http.Error(rw, errorOf(err, q.lang).String(), httpStatus(err))
		return
	}
	flusher, ok := rw.(http.Flusher)
	if !ok {
		http.Error(rw, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	rc := http.NewResponseController(rw)
	_ = rc.SetWriteDeadline(time.Time{})
	h := rw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rw.WriteHeader(http.StatusOK)
	fmt.Fprint(rw, ": live\n\n")
	flusher.Flush()
	// The response is written only while this handler runs.
	var mu sync.Mutex
	done := false
	defer func() { mu.Lock(); done = true; mu.Unlock() }()
	err = w.d.Admin.Follow(q.ctx, lf, func(l ops.LogLine) {
		b, _ := json.Marshal(rowOf(admin.LogEvent(l)))
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		fmt.Fprintf(rw, "data: %s\n\n", b)
		flusher.Flush()
	})
	if err != nil && q.ctx.Err() == nil {
		w.d.Log.Warn("live log stopped", "err", err)
	}
}

// dlqPageSize is how many dead letters a page of the console shows.
const dlqPageSize = 200

type dlqData struct {
	Letters []*adminv1.DeadLetter
	// Total is how many there are on every page; Paged is set past the
	// first page; OlderHref links the next, older, page.
	Total                 int32
	Paged                 bool
	NewestHref, OlderHref string
}

// deadLetters is a page of dead letters, newest first, with a link to the
// older ones, as `hipersync dlq list` says how many it left out.
func (w *Web) deadLetters(q *req) (string, string, string, any, error) {
	qs := q.r.URL.Query()
	before, _ := strconv.ParseUint(qs.Get("before"), 10, 64)
	resp, err := w.d.Admin.ListDeadLetters(q.ctx, &adminv1.ListDeadLettersRequest{TenantId: qs.Get("tenant"), Limit: dlqPageSize, BeforeId: before})
	d := dlqData{Total: resp.GetTotal(), Paged: before > 0}
	if err == nil {
		l := resp.GetDeadLetters()
		for i := len(l) - 1; i >= 0; i-- { // newest first
			d.Letters = append(d.Letters, l[i])
		}
	}
	v := url.Values{}
	if t := qs.Get("tenant"); t != "" {
		v.Set("tenant", t)
	}
	d.NewestHref = "/dead-letters"
	if len(v) > 0 {
		d.NewestHref += "?" + v.Encode()
	}
	if next := resp.GetNextBeforeId(); next > 0 {
		v.Set("before", strconv.FormatUint(next, 10))
		d.OlderHref = "/dead-letters?" + v.Encode()
	}
	return "dlq", "dlq", q.t("dlq.title"), d, err
}

func (w *Web) retry(q *req) (string, string, error) {
	id, err := strconv.ParseUint(q.r.PathValue("id"), 10, 64)
	if err != nil {
		return "/dead-letters", "", err
	}
	_, err = w.d.Admin.RetryDeadLetter(q.ctx, &adminv1.RetryDeadLetterRequest{Id: id})
	w.invalidate()
	return "/dead-letters", fmt.Sprintf(q.t("dlq.retried"), id), err
}

type auditData struct {
	Entries []auditRow
	Capped  int
}

// auditRow is an audit entry with its error as the other pages show one:
// the code's Portuguese text (the table's now: the entry keeps the code)
// and the code, the English message as the detail.
type auditRow struct {
	*adminv1.AuditEntry
	Shown shownError
}

func (w *Web) audit(q *req) (string, string, string, any, error) {
	resp, err := w.d.Admin.ListAuditEntries(q.ctx, &adminv1.ListAuditEntriesRequest{TenantId: q.r.URL.Query().Get("tenant"), Limit: auditPageSize})
	rows := make([]auditRow, len(resp.GetEntries()))
	for i, e := range resp.GetEntries() {
		rows[i].AuditEntry = e
		if e.GetError() != "" {
			r, ok := admin.RefusalByCode(e.GetErrorCode())
			rows[i].Shown = shown(e.GetError(), r, ok, q.lang)
		}
	}
	return "audit", "audit", q.t("audit.title"), auditData{Entries: rows, Capped: capped(len(rows), auditPageSize)}, err
}
