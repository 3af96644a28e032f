package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// unknownTenant is the dead-letter subject token when the original subject
// names no valid tenant.
const unknownTenant = "_unknown"

// ceTypeDeadLetter is the ce-type of dead-letter records.
const ceTypeDeadLetter = "hipersync.deadletter"

// ErrDeadLetterNotFound is returned by RetryDeadLetter for an unknown id.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// publishDeadLetter records m on the dead-letter stream. Its Nats-Msg-Id
// comes from the original's stream, sequence and consumer, so a crash between
// recording it and terminating the original records it only once.
func publishDeadLetter(ctx context.Context, js jetstream.JetStream, ns Namespace, prop propagation.TextMapPropagator, m *Message, code string, cause error) error {
	tenant := m.Tenant
	if tenant == "" {
		tenant = tenantToken(ns, m.Subject)
	}
	dl := &eventsv1.DeadLetter{
		ReasonCode:     code,
		Reason:         cause.Error(),
		Stream:         m.Stream,
		StreamSequence: m.StreamSeq,
		Consumer:       m.Consumer,
		Subject:        m.Subject,
		Headers:        flattenHeaders(m.Headers),
		Data:           m.Data,
		Deliveries:     m.Deliveries,
		FailedAt:       timestamppb.Now(),
		Tenant:         tenant,
	}
	id := "dlq:" + m.Stream + ":" + strconv.FormatUint(m.StreamSeq, 10) + ":" + m.Consumer
	return recordDeadLetter(ctx, js, ns, prop, dl, id)
}

// Body is something that could not be processed and is not a NATS message
// — an answer from Hiper that makes no sense, say — for DeadLetterBody.
type Body struct {
	// ID is the record's Nats-Msg-Id: deterministic, so that the same
	// failure recorded twice within the duplicate window is kept once.
	ID string
	// Tenant it concerns, if any.
	Tenant string
	// Consumer is who failed, e.g. "invoice-watcher"; it names the record's
	// subject, dlq.<tenant>.<consumer>, as for a failed message.
	Consumer string
	// Subject is what the body was about, e.g. the work item being done.
	// RetryDeadLetter refuses records whose subject is not an event's: the
	// service that recorded one retries the work itself.
	Subject string
	// Code is a stable reason code, e.g. "hiper_bad_answer".
	Code  string
	Cause error
	// Headers describe the body, e.g. the HTTP status it came with.
	Headers map[string]string
	Data    []byte
}

// DeadLetterBody records b on the dead-letter stream, beside the messages
// that failed, so that operators see it with `hipersync dlq list`.
func DeadLetterBody(ctx context.Context, js jetstream.JetStream, ns Namespace, b Body) error {
	if b.ID == "" || b.Consumer == "" || b.Code == "" || b.Cause == nil {
		return errors.New("dead-letter body: ID, Consumer, Code and Cause are required")
	}
	if b.Tenant != "" && tenant.ValidID(b.Tenant) != nil {
		b.Tenant = ""
	}
	dl := &eventsv1.DeadLetter{
		ReasonCode: b.Code,
		Reason:     b.Cause.Error(),
		Consumer:   b.Consumer,
		Subject:    b.Subject,
		Headers:    b.Headers,
		Data:       b.Data,
		Deliveries: 1,
		FailedAt:   timestamppb.Now(),
		Tenant:     b.Tenant,
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	return recordDeadLetter(ctx, js, ns, prop, dl, "dlq:"+b.ID)
}

// recordDeadLetter publishes dl with id as its Nats-Msg-Id and ce-id.
func recordDeadLetter(ctx context.Context, js jetstream.JetStream, ns Namespace, prop propagation.TextMapPropagator, dl *eventsv1.DeadLetter, id string) error {
	data, err := proto.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	subjectTenant := dl.GetTenant()
	if subjectTenant == "" {
		subjectTenant = unknownTenant
	}
	h := nats.Header{}
	h.Set(HeaderMsgID, id)
	h.Set(HeaderSpecVersion, specVersion)
	h.Set(HeaderID, id)
	h.Set(HeaderType, ceTypeDeadLetter)
	h.Set(HeaderSource, "hipersync/"+dl.GetConsumer())
	h.Set(HeaderTime, dl.GetFailedAt().AsTime().Format(time.RFC3339Nano))
	h.Set(HeaderSubject, dl.GetSubject())
	h.Set(HeaderContentType, ContentTypeProtobuf)
	prop.Inject(ctx, HeaderCarrier(h))
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: ns.DeadLetterSubject(subjectTenant, dl.GetConsumer()), Header: h, Data: data},
		jetstream.WithExpectStream(ns.Stream(StreamDeadLetter)))
	if err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	return nil
}

// tenantToken returns the tenant a subject that failed to parse still names,
// or "".
func tenantToken(ns Namespace, subject string) string {
	rest := subject
	if ns.Prefix != "" {
		rest = strings.TrimPrefix(rest, ns.Prefix+".")
	}
	tokens := strings.SplitN(rest, ".", 3)
	if len(tokens) >= 2 && tenant.ValidID(tokens[1]) == nil {
		return tokens[1]
	}
	return ""
}

// flattenHeaders keeps each header's first value: DeadLetter's map holds one
// per key, and envelope headers are single-valued.
func flattenHeaders(h nats.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	m := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			m[k] = v[0]
		}
	}
	return m
}

// DeadLetterEntry is one record of the dead-letter stream.
type DeadLetterEntry struct {
	// Seq is the record's sequence in the dead-letter stream: the id
	// RetryDeadLetter takes.
	Seq uint64
	// Subject is the record's own subject, dlq.<tenant>.<consumer>.
	Subject string
	Time    time.Time
	Letter  *eventsv1.DeadLetter
	// Err is set, and Letter nil, when the record itself cannot be decoded.
	Err error
}

// ListDeadLetters returns up to limit dead letters of ns, oldest first;
// limit <= 0 returns them all.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, ns Namespace, limit int) ([]DeadLetterEntry, error) {
	stream, err := js.Stream(ctx, ns.Stream(StreamDeadLetter))
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	filter := ns.StreamSubjects(StreamDeadLetter)
	var entries []DeadLetterEntry
	// Reading by "next sequence on the subject" skips the gaps retried
	// (deleted) records leave, without a consumer to create and clean up.
	for seq := uint64(1); limit <= 0 || len(entries) < limit; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list dead letters: read from sequence %d: %w", seq, err)
		}
		entries = append(entries, deadLetterEntry(raw))
		seq = raw.Sequence + 1
	}
	return entries, nil
}

// DeadLetterPage is one page of dead letters.
type DeadLetterPage struct {
	// Entries, newest first.
	Entries []DeadLetterEntry
	// Total is how many dead letters there are, on every page.
	Total int
	// Older is the before of the next page; 0 when none is older.
	Older uint64
}

// PageDeadLetters returns up to limit dead letters of tenant ("" for every
// tenant) older than sequence before (0 for the newest), newest first;
// limit <= 0 returns them all.
func PageDeadLetters(ctx context.Context, js jetstream.JetStream, ns Namespace, tenant string, before uint64, limit int) (DeadLetterPage, error) {
	var page DeadLetterPage
	stream, err := js.Stream(ctx, ns.Stream(StreamDeadLetter))
	if err != nil {
		return page, fmt.Errorf("list dead letters: %w", err)
	}
	filter, mine := ns.StreamSubjects(StreamDeadLetter), ""
	if tenant != "" {
		filter, mine = ns.DeadLetterSubject(tenant, "*"), ns.DeadLetterSubject(tenant, "")
	}
	// The sequences retried records left empty, so that walking back from
	// the end asks only for records that exist; the count of each subject
	// is the total.
	info, err := stream.Info(ctx, jetstream.WithDeletedDetails(true), jetstream.WithSubjectFilter(filter))
	if err != nil {
		return page, fmt.Errorf("list dead letters: %w", err)
	}
	st := info.State
	for _, n := range st.Subjects {
		page.Total += int(n)
	}
	deleted := make(map[uint64]bool, len(st.Deleted))
	for _, seq := range st.Deleted {
		deleted[seq] = true
	}
	from := st.LastSeq
	if before > 0 && before-1 < from {
		from = before - 1
	}
	oldest := uint64(0)
	for seq := from; seq >= st.FirstSeq && seq > 0 && (limit <= 0 || len(page.Entries) < limit); seq-- {
		if deleted[seq] {
			continue
		}
		raw, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // retried meanwhile
		}
		if err != nil {
			return page, fmt.Errorf("list dead letters: read %d: %w", seq, err)
		}
		if mine != "" && !strings.HasPrefix(raw.Subject, mine) {
			continue
		}
		page.Entries = append(page.Entries, deadLetterEntry(raw))
		oldest = seq
	}
	if oldest > st.FirstSeq {
		// The oldest letter of the filter left, in one read.
		first, err := stream.GetMsg(ctx, st.FirstSeq, jetstream.WithGetMsgSubject(filter))
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return page, fmt.Errorf("list dead letters: %w", err)
		}
		if err == nil && first.Sequence < oldest {
			page.Older = oldest
		}
	}
	return page, nil
}

func deadLetterEntry(raw *jetstream.RawStreamMsg) DeadLetterEntry {
	e := DeadLetterEntry{Seq: raw.Sequence, Subject: raw.Subject, Time: raw.Time}
	dl := &eventsv1.DeadLetter{}
	if err := Decode(raw.Header, raw.Data, dl); err != nil {
		e.Err = err
	} else {
		e.Letter = dl
	}
	return e
}

// RetryDeadLetter republishes dead letter seq's original message, headers
// and body, to its original subject, then deletes the record. The message
// gets a new Nats-Msg-Id, derived from seq, so the duplicate window does not
// swallow it, yet a retry repeated after a crash is still dropped. Every
// consumer of that subject sees it again; handlers are idempotent by ce-id.
func RetryDeadLetter(ctx context.Context, js jetstream.JetStream, ns Namespace, seq uint64) error {
	stream, err := js.Stream(ctx, ns.Stream(StreamDeadLetter))
	if err != nil {
		return fmt.Errorf("retry dead letter %d: %w", seq, err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("retry dead letter %d: %w", seq, ErrDeadLetterNotFound)
	}
	if err != nil {
		return fmt.Errorf("retry dead letter %d: %w", seq, err)
	}
	dl := &eventsv1.DeadLetter{}
	if err := Decode(raw.Header, raw.Data, dl); err != nil {
		return fmt.Errorf("retry dead letter %d: %w", seq, err)
	}
	// Only event subjects of this namespace: a record must not be able to
	// send its body anywhere else.
	s, err := ns.ParseSubject(dl.GetSubject())
	if err != nil {
		return fmt.Errorf("retry dead letter %d: %w", seq, err)
	}
	h := nats.Header{}
	for k, v := range dl.GetHeaders() {
		// Nats-* headers are JetStream's instructions to the original
		// publish (id, expected stream or sequence, TTL…); replaying them
		// could make the retry fail or vanish.
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		h.Set(k, v)
	}
	h.Set(HeaderMsgID, "dlq-retry:"+raw.Subject+":"+strconv.FormatUint(seq, 10))
	target := StreamHiper
	if s.Source == SourceStore {
		target = StreamStore
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: dl.GetSubject(), Header: h, Data: dl.GetData()},
		jetstream.WithExpectStream(ns.Stream(target))); err != nil {
		return fmt.Errorf("retry dead letter %d: republish to %s: %w", seq, dl.GetSubject(), err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("retry dead letter %d: delete record: %w", seq, err)
	}
	return nil
}
