package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/personal"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// LogFilter selects events of the sync log: the filters of `hipersync
// events tail` and of the admin API's QueryEvents and StreamEvents.
type LogFilter struct {
	// Tenant, empty for every tenant.
	Tenant string
	// Kind is a kind (order.accepted) or a prefix (order.>); empty for all.
	Kind string
	// Start is the time to read from.
	Start time.Time
	// Sources, empty for both.
	Sources []events.Source
	// Contains keeps only events whose JSON holds this text.
	Contains string
	// Until, when set, keeps only events up to this time.
	Until time.Time
	// Outcome, when set, keeps only hipersync's events of that outcome:
	// "ok" or "failed" (FailedKinds), seed 004's "com sucesso" / "falha".
	Outcome string
	// Order and Product keep only events about this store order id
	// (orderId) or Hiper product id (productId).
	Order, Product string
	// Reveal shows a store order's customer data whole; masked otherwise
	// (personal.MaskEvent), and the filters match the event as shown.
	Reveal bool
}

// FailedKinds are the kinds a sync log filtered by outcome counts as
// failures; every other kind hipersync publishes is an "ok".
var FailedKinds = map[string]bool{
	string(events.KindOrderRejected): true, string(events.KindOrderNeedsReview): true, string(events.KindOrderFailed): true,
	string(events.KindOrderWatchExpired): true, string(events.KindSyncFailed): true, string(events.KindCatalogGuardHeld): true,
}

// ParseOutcome checks an --outcome value.
func ParseOutcome(s string) (string, error) {
	switch s {
	case "", "ok", "failed":
		return s, nil
	}
	return "", fmt.Errorf("want ok or failed, got %q", s)
}

// ParseSource turns "store", "hiper" or "all" ("" too) into sources.
func ParseSource(s string) ([]events.Source, error) {
	switch s {
	case "all", "":
		return []events.Source{events.SourceStore, events.SourceHiper}, nil
	case "store":
		return []events.Source{events.SourceStore}, nil
	case "hiper":
		return []events.Source{events.SourceHiper}, nil
	}
	return nil, fmt.Errorf("want store, hiper or all, got %q", s)
}

// Validate checks the filter's tenant.
func (f LogFilter) Validate() error {
	if f.Tenant != "" {
		if err := tenant.ValidID(f.Tenant); err != nil {
			return err
		}
	}
	return nil
}

func (f LogFilter) sources() []events.Source {
	if len(f.Sources) == 0 {
		return []events.Source{events.SourceStore, events.SourceHiper}
	}
	return f.Sources
}

func (f LogFilter) keep(l LogLine) bool {
	if f.Contains != "" && !strings.Contains(string(l.Event), f.Contains) && !strings.Contains(l.ID, f.Contains) {
		return false
	}
	if !f.Until.IsZero() && l.Time.After(f.Until) {
		return false
	}
	if f.Outcome != "" {
		if l.Stream == "" || strings.HasSuffix(l.Stream, string(events.StreamStore)) {
			return false
		}
		if FailedKinds[l.Kind] != (f.Outcome == "failed") {
			return false
		}
	}
	if f.Order == "" && f.Product == "" {
		return true
	}
	var ids struct {
		OrderID   string `json:"orderId"`
		ProductID string `json:"productId"`
	}
	_ = json.Unmarshal(l.Event, &ids)
	return (f.Order == "" || ids.OrderID == f.Order) && (f.Product == "" || ids.ProductID == f.Product)
}

// LogLine is one event of the sync log.
type LogLine struct {
	Time    time.Time       `json:"time"`
	Stream  string          `json:"stream"`
	Subject string          `json:"subject"`
	Tenant  string          `json:"tenant"`
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Event   json.RawMessage `json:"event,omitempty"`
	Error   string          `json:"error,omitempty"`

	// Summary is a one-line description; a store order's customer data
	// stays out of it.
	Summary string `json:"-"`
}

// ReadLog reads the events f selects, from f.Start up to each stream's end
// now, oldest first.
func ReadLog(ctx context.Context, js jetstream.JetStream, ns events.Namespace, f LogFilter) ([]LogLine, error) {
	var lines []LogLine
	for _, src := range f.sources() {
		got, err := readLog(ctx, js, ns, src, f)
		if err != nil {
			return nil, err
		}
		lines = append(lines, got...)
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	return lines, nil
}

// FollowLog calls emit, one call at a time, with each event f selects from
// f.Start until ctx is done.
func FollowLog(ctx context.Context, js jetstream.JetStream, ns events.Namespace, f LogFilter, emit func(LogLine)) error {
	// mu makes the calls one at a time; stopped, set under it before
	// FollowLog returns, keeps a callback the consumer still runs after its
	// Stop (the ordered consumer's Closed does not wait for one in flight)
	// from writing to an answer its caller has finished.
	var mu sync.Mutex
	stopped := false
	srcs := f.sources()
	errs := make(chan error, len(srcs))
	for _, src := range srcs {
		go func() {
			errs <- followLog(ctx, js, ns, src, f, func(l LogLine) {
				if !f.keep(l) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if !stopped {
					emit(l)
				}
			})
		}()
	}
	var all []error
	for range srcs {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			all = append(all, err)
		}
	}
	mu.Lock()
	stopped = true
	mu.Unlock()
	return errors.Join(all...)
}

func consumer(ctx context.Context, js jetstream.JetStream, ns events.Namespace, src events.Source, f LogFilter) (jetstream.Consumer, string, error) {
	tenantTok, kindTok := f.Tenant, f.Kind
	if tenantTok == "" {
		tenantTok = "*"
	}
	if kindTok == "" {
		kindTok = ">"
	}
	stream, subject := ns.Stream(events.StreamHiper), ns.HiperSubject(tenantTok, events.Kind(kindTok))
	if src == events.SourceStore {
		stream, subject = ns.Stream(events.StreamStore), ns.StoreSubject(tenantTok, events.Kind(kindTok))
	}
	start := f.Start
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, stream, fmt.Errorf("read %s: %w", stream, err)
	}
	return cons, stream, nil
}

func readLog(ctx context.Context, js jetstream.JetStream, ns events.Namespace, src events.Source, f LogFilter) ([]LogLine, error) {
	cons, stream, err := consumer(ctx, js, ns, src, f)
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var lines []LogLine
	// Batches: one pull per message cost a round trip each, seconds for a
	// day of 2,000 stores' events.
	for pending := info.NumPending; pending > 0; {
		batch, err := cons.Fetch(int(min(pending, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if l := Line(ns, stream, msg, f.Reveal); f.keep(l) {
				lines = append(lines, l)
			}
			if md, _ := msg.Metadata(); md != nil {
				pending = md.NumPending
			} else {
				pending = 0
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		if got == 0 {
			break
		}
	}
	return lines, nil
}

func followLog(ctx context.Context, js jetstream.JetStream, ns events.Namespace, src events.Source, f LogFilter, emit func(LogLine)) error {
	cons, stream, err := consumer(ctx, js, ns, src, f)
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { emit(Line(ns, stream, msg, f.Reveal)) })
	if err != nil {
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return nil
}

var compactJSON = protojson.MarshalOptions{}

// Line decodes one message of stream into a log line, the customer's
// personal data of a store order masked unless reveal.
func Line(ns events.Namespace, stream string, msg jetstream.Msg, reveal bool) LogLine {
	l := LogLine{Stream: stream, Subject: msg.Subject(), ID: msg.Headers().Get(events.HeaderID)}
	if md, err := msg.Metadata(); err == nil {
		l.Time = md.Timestamp
	}
	subj, err := ns.ParseSubject(msg.Subject())
	if err != nil {
		l.Error = err.Error()
		return l
	}
	l.Tenant, l.Kind = subj.Tenant, string(subj.Kind)
	if subj.Source == events.SourceStore {
		l.Kind = "store." + l.Kind
	}
	m, err := subj.NewMessage()
	if err == nil {
		err = events.Decode(msg.Headers(), msg.Data(), m)
	}
	if err != nil {
		// A decoder's error may quote the body it could not read.
		l.Error = err.Error()
		if !reveal {
			l.Error = personal.Redact(l.Error)
		}
		return l
	}
	if !reveal {
		// The sync log is read by support and stores: a customer's
		// document, e-mail, names and addresses only where a person asks
		// for them (events tail --reveal).
		personal.MaskEvent(m)
	}
	if b, err := compactJSON.Marshal(m); err == nil {
		// protojson varies its spacing on purpose; the log prints it compact
		// so that it reads, and greps, the same every time.
		var c bytes.Buffer
		if json.Compact(&c, b) == nil {
			b = c.Bytes()
		}
		l.Event = b
	}
	l.Summary = summarize(m, l.Event)
	return l
}

// summarize is the one-line description of an event. A store order's
// customer data stays out of it: the line is for following the flow.
func summarize(m proto.Message, raw []byte) string {
	if o, ok := m.(*eventsv1.StoreOrderApproved); ok {
		return fmt.Sprintf(`{"orderId":%q,"items":%d,"payments":%d,"currency":%q}`, o.GetOrderId(), len(o.GetItems()), len(o.GetPayments()), o.GetCurrency())
	}
	s := string(raw)
	if len(s) > 240 {
		s = s[:237] + "..."
	}
	return s
}
