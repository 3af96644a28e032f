package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
)

const eventsUsage = `usage:
  hipersync events tail [--tenant T] [--kind K] [--since DURATION] [--source store|hiper|all] [--follow]
    K is a kind such as order.accepted, or a prefix such as order.> or catalog.>`

// logLine is one event of the sync log, as `events tail --json` prints it
// (one JSON object a line).
type logLine struct {
	Time    time.Time       `json:"time"`
	Stream  string          `json:"stream"`
	Subject string          `json:"subject"`
	Tenant  string          `json:"tenant"`
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Event   json.RawMessage `json:"event,omitempty"`
	Error   string          `json:"error,omitempty"`

	summary string
}

func runEvents(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || args[0] != "tail" {
		return usagef("events: want `events tail`\n%s", eventsUsage)
	}
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object a line")
	tenantID := fs.String("tenant", "", "only this tenant")
	kind := fs.String("kind", "", "only this kind (order.accepted) or prefix (order.>)")
	since := fs.Duration("since", time.Hour, "how far back to start")
	source := fs.String("source", "all", "store (what stores sent), hiper (what hipersync published) or all")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("events tail takes no arguments\n%s", eventsUsage)
	}
	if *tenantID != "" {
		if err := events.ValidTenant(*tenantID); err != nil {
			return usagef("--tenant: %v", err)
		}
	}
	var sources []events.Source
	switch *source {
	case "all":
		sources = []events.Source{events.SourceStore, events.SourceHiper}
	case "store":
		sources = []events.Source{events.SourceStore}
	case "hiper":
		sources = []events.Source{events.SourceHiper}
	default:
		return usagef("--source: want store, hiper or all, got %q", *source)
	}

	s, err := connectNATS(e)
	if err != nil {
		return err
	}
	defer s.Close()
	tenantTok := *tenantID
	if tenantTok == "" {
		tenantTok = "*"
	}
	kindTok := *kind
	if kindTok == "" {
		kindTok = ">"
	}
	start := time.Now().Add(-*since)
	print := printer(e.Stdout, *asJSON)

	if !*follow {
		var lines []logLine
		for _, src := range sources {
			got, err := s.readLog(ctx, src, tenantTok, kindTok, start)
			if err != nil {
				return err
			}
			lines = append(lines, got...)
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
		for _, l := range lines {
			print(l)
		}
		if len(lines) == 0 && !*asJSON {
			fmt.Fprintf(e.Stdout, "no events since %s\n", start.Format(time.RFC3339))
		}
		return nil
	}

	var mu sync.Mutex
	errs := make(chan error, len(sources))
	for _, src := range sources {
		go func() {
			errs <- s.followLog(ctx, src, tenantTok, kindTok, start, func(l logLine) {
				mu.Lock()
				defer mu.Unlock()
				print(l)
			})
		}()
	}
	var all []error
	for range sources {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

func (s *streams) consumer(ctx context.Context, src events.Source, tenantTok, kindTok string, start time.Time) (jetstream.Consumer, string, error) {
	stream, subject := s.ns.Stream(events.StreamHiper), s.ns.HiperSubject(tenantTok, events.Kind(kindTok))
	if src == events.SourceStore {
		stream, subject = s.ns.Stream(events.StreamStore), s.ns.StoreSubject(tenantTok, events.Kind(kindTok))
	}
	cons, err := s.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, stream, fmt.Errorf("read %s: %w", stream, err)
	}
	return cons, stream, nil
}

// readLog reads the events of src from start up to the stream's end now.
func (s *streams) readLog(ctx context.Context, src events.Source, tenantTok, kindTok string, start time.Time) ([]logLine, error) {
	cons, stream, err := s.consumer(ctx, src, tenantTok, kindTok, start)
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var lines []logLine
	for pending := info.NumPending; pending > 0; {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		lines = append(lines, s.line(stream, msg))
		md, _ := msg.Metadata()
		if md == nil {
			break
		}
		pending = md.NumPending
	}
	return lines, nil
}

// followLog prints the events of src from start until ctx is done.
func (s *streams) followLog(ctx context.Context, src events.Source, tenantTok, kindTok string, start time.Time, print func(logLine)) error {
	cons, stream, err := s.consumer(ctx, src, tenantTok, kindTok, start)
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { print(s.line(stream, msg)) })
	if err != nil {
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

var compactJSON = protojson.MarshalOptions{}

func (s *streams) line(stream string, msg jetstream.Msg) logLine {
	l := logLine{Stream: stream, Subject: msg.Subject(), ID: msg.Headers().Get(events.HeaderID)}
	if md, err := msg.Metadata(); err == nil {
		l.Time = md.Timestamp
	}
	subj, err := s.ns.ParseSubject(msg.Subject())
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
		l.Error = err.Error()
		return l
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
	l.summary = summarize(m, l.Event)
	return l
}

// summarize is the text-mode description of an event. A store order's
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

func printer(w io.Writer, asJSON bool) func(logLine) {
	if asJSON {
		enc := json.NewEncoder(w)
		return func(l logLine) { _ = enc.Encode(l) }
	}
	return func(l logLine) {
		what := l.summary
		if l.Error != "" {
			what = "undecodable: " + l.Error
		}
		fmt.Fprintf(w, "%s  %-12s  %-26s  %s\n", l.Time.UTC().Format(time.RFC3339), l.Tenant, l.Kind, strings.TrimSpace(what))
	}
}
