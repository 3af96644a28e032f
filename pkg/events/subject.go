package events

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Sentinel errors of names and subjects.
var (
	ErrInvalidSubject   = errors.New("invalid subject")
	ErrUnknownKind      = errors.New("unknown event kind")
	ErrInvalidNamespace = errors.New("invalid namespace")
)

// Source says who publishes an event: the store, or hipersync about Hiper.
type Source string

const (
	SourceStore Source = "store"
	SourceHiper Source = "hiper"
)

// Kind is what happened, the dotted tail of a subject after the tenant. The
// same Kind may exist for both sources (order.cancelled): the pair (Source,
// Kind) names the message type.
type Kind string

// Kinds a store publishes.
const (
	KindOrderApproved Kind = "order.approved"
	// KindOrderCancelled is published by the store (StoreOrderCancelled) and
	// by hipersync (OrderCancelled).
	KindOrderCancelled Kind = "order.cancelled"
)

// Kinds hipersync publishes.
const (
	KindOrderAccepted          Kind = "order.accepted"
	KindOrderRejected          Kind = "order.rejected"
	KindOrderNeedsReview       Kind = "order.needs_review"
	KindOrderFailed            Kind = "order.failed"
	KindOrderShipped           Kind = "order.shipped"
	KindOrderWatchExpired      Kind = "order.watch_expired"
	KindInvoiceIssued          Kind = "invoice.issued"
	KindCatalogProductUpserted Kind = "catalog.product.upserted"
	KindCatalogProductSkipped  Kind = "catalog.product.skipped"
	KindCatalogGuardHeld       Kind = "catalog.guard.held"
	KindCatalogPriceChanged    Kind = "catalog.price.changed"
	KindStockChanged           Kind = "stock.changed"
	KindOrderProcessing        Kind = "order.processing"
	KindOrderStatusIgnored     Kind = "order.status_ignored"
	KindSyncCompleted          Kind = "sync.completed"
	KindSyncFailed             Kind = "sync.failed"
)

type eventType struct {
	source Source
	kind   Kind
}

// The registry is the single place that ties a subject to a message type;
// the reverse index makes a wrong kind for a message a publish-time error.
var (
	messageTypes = map[eventType]protoreflect.MessageType{
		{SourceStore, KindOrderApproved}:  (&eventsv1.StoreOrderApproved{}).ProtoReflect().Type(),
		{SourceStore, KindOrderCancelled}: (&eventsv1.StoreOrderCancelled{}).ProtoReflect().Type(),

		{SourceHiper, KindOrderAccepted}:          (&eventsv1.OrderAccepted{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderRejected}:          (&eventsv1.OrderRejected{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderNeedsReview}:       (&eventsv1.OrderNeedsReview{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderFailed}:            (&eventsv1.OrderFailed{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderCancelled}:         (&eventsv1.OrderCancelled{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderShipped}:           (&eventsv1.OrderShipped{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderWatchExpired}:      (&eventsv1.OrderWatchExpired{}).ProtoReflect().Type(),
		{SourceHiper, KindInvoiceIssued}:          (&eventsv1.InvoiceIssued{}).ProtoReflect().Type(),
		{SourceHiper, KindCatalogProductUpserted}: (&eventsv1.CatalogProductUpserted{}).ProtoReflect().Type(),
		{SourceHiper, KindCatalogProductSkipped}:  (&eventsv1.CatalogProductSkipped{}).ProtoReflect().Type(),
		{SourceHiper, KindCatalogGuardHeld}:       (&eventsv1.CatalogGuardHeld{}).ProtoReflect().Type(),
		{SourceHiper, KindCatalogPriceChanged}:    (&eventsv1.CatalogPriceChanged{}).ProtoReflect().Type(),
		{SourceHiper, KindStockChanged}:           (&eventsv1.StockChanged{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderProcessing}:        (&eventsv1.OrderProcessing{}).ProtoReflect().Type(),
		{SourceHiper, KindOrderStatusIgnored}:     (&eventsv1.OrderStatusIgnored{}).ProtoReflect().Type(),
		{SourceHiper, KindSyncCompleted}:          (&eventsv1.SyncCompleted{}).ProtoReflect().Type(),
		{SourceHiper, KindSyncFailed}:             (&eventsv1.SyncFailed{}).ProtoReflect().Type(),
	}
	eventTypes = func() map[protoreflect.FullName]eventType {
		m := make(map[protoreflect.FullName]eventType, len(messageTypes))
		for et, mt := range messageTypes {
			m[mt.Descriptor().FullName()] = et
		}
		return m
	}()
)

// Kinds lists the kinds a source publishes, sorted.
func Kinds(src Source) []Kind {
	var ks []Kind
	for et := range messageTypes {
		if et.source == src {
			ks = append(ks, et.kind)
		}
	}
	slices.Sort(ks)
	return ks
}

// NewMessage returns an empty message of the type events of (src, kind)
// carry, to decode any event from its subject (e.g. `hipersync events tail`).
func NewMessage(src Source, kind Kind) (proto.Message, error) {
	mt, ok := messageTypes[eventType{src, kind}]
	if !ok {
		return nil, fmt.Errorf("%w: %s %q", ErrUnknownKind, src, kind)
	}
	return mt.New().Interface(), nil
}

// KindOf returns the source and kind whose events carry msg's type.
func KindOf(msg proto.Message) (Source, Kind, error) {
	if msg == nil {
		return "", "", fmt.Errorf("%w: nil message", ErrUnknownKind)
	}
	name := msg.ProtoReflect().Descriptor().FullName()
	et, ok := eventTypes[name]
	if !ok {
		return "", "", fmt.Errorf("%w: %s is not an event message", ErrUnknownKind, name)
	}
	return et.source, et.kind, nil
}

// CEType is the CloudEvents type of (src, kind): "hipersync.order.accepted"
// for hipersync's events, "hipersync.store.order.approved" for a store's.
func CEType(src Source, kind Kind) string {
	if src == SourceStore {
		return "hipersync.store." + string(kind)
	}
	return "hipersync." + string(kind)
}

// Stream names one of hipersync's streams, before the namespace is applied.
type Stream string

const (
	// StreamStore keeps what stores publish (store.>).
	StreamStore Stream = "STORE"
	// StreamHiper keeps what hipersync publishes (hiper.>).
	StreamHiper Stream = "HIPER"
	// StreamDeadLetter keeps what could not be processed (dlq.>).
	StreamDeadLetter Stream = "DEADLETTER"
)

// Streams lists every stream EnsureStreams provisions.
var Streams = []Stream{StreamStore, StreamHiper, StreamDeadLetter}

// subjectRoot is each stream's first subject token.
func (s Stream) subjectRoot() string {
	switch s {
	case StreamStore:
		return string(SourceStore)
	case StreamHiper:
		return string(SourceHiper)
	case StreamDeadLetter:
		return "dlq"
	}
	return ""
}

// NamespaceEnv is the environment variable NamespaceFromEnv reads.
const NamespaceEnv = "HIPERSYNC_NAMESPACE"

const maxPrefixLen = 32

// Namespace isolates one deployment's (or one test's) streams, subjects and
// buckets from another's on the same NATS server. The zero Namespace is
// production: STORE on store.>, HIPER on hiper.>, buckets as named. Prefix
// "t1" gives t1_STORE on t1.store.> and bucket t1_<name>. Every name goes
// through its methods so that nothing escapes the namespace by accident.
type Namespace struct {
	Prefix string
	// Replicas is how many copies a NATS cluster keeps of each stream and
	// bucket of the namespace (HIPERSYNC_STREAM_REPLICAS): 1 on one server,
	// 3 on a three-node cluster. 0 means 1.
	Replicas int
	// Limits bound what its streams and buckets keep on disk.
	Limits Limits
}

// StreamReplicas is ns.Replicas, at least 1.
func (ns Namespace) StreamReplicas() int { return max(ns.Replicas, 1) }

// NewNamespace returns the namespace of prefix, validated.
func NewNamespace(prefix string) (Namespace, error) {
	ns := Namespace{Prefix: prefix}
	return ns, ns.Validate()
}

// NamespaceFromEnv reads HIPERSYNC_NAMESPACE; unset or empty is production.
func NamespaceFromEnv() (Namespace, error) {
	ns := Namespace{Prefix: os.Getenv(NamespaceEnv)}
	if err := ns.Validate(); err != nil {
		return Namespace{}, fmt.Errorf("%s: %w", NamespaceEnv, err)
	}
	return ns, nil
}

// Validate reports whether the prefix is 0 to 32 of a-z, 0-9 and '_', which
// keeps it one subject token and a legal part of stream and bucket names.
func (ns Namespace) Validate() error {
	if ns.Replicas < 0 || ns.Replicas > 5 {
		return fmt.Errorf("%w: %d replicas; NATS keeps 1 to 5", ErrInvalidNamespace, ns.Replicas)
	}
	if len(ns.Prefix) > maxPrefixLen {
		return fmt.Errorf("%w: prefix %q is %d characters long; want at most %d", ErrInvalidNamespace, ns.Prefix, len(ns.Prefix), maxPrefixLen)
	}
	for i := 0; i < len(ns.Prefix); i++ {
		if c := ns.Prefix[i]; !isLowerAlnum(c) && c != '_' {
			return fmt.Errorf("%w: prefix %q has %q at %d; want only a-z, 0-9 or '_'", ErrInvalidNamespace, ns.Prefix, rune(c), i)
		}
	}
	return nil
}

func (ns Namespace) name(n string) string {
	if ns.Prefix == "" {
		return n
	}
	return ns.Prefix + "_" + n
}

func (ns Namespace) subject(tokens ...string) string {
	s := strings.Join(tokens, ".")
	if ns.Prefix == "" {
		return s
	}
	return ns.Prefix + "." + s
}

// Stream returns the JetStream name of s, e.g. "t1_STORE".
func (ns Namespace) Stream(s Stream) string { return ns.name(string(s)) }

// Bucket returns the name of KV bucket name, e.g. "t1_tenants".
func (ns Namespace) Bucket(name string) string { return ns.name(name) }

// StreamSubjects returns the subjects stream s holds, e.g. "t1.store.>".
func (ns Namespace) StreamSubjects(s Stream) string { return ns.subject(s.subjectRoot(), ">") }

// StoreSubject returns the subject of a store event. It does not validate:
// tenant may be a wildcard ("*") to build a consumer filter; Publish
// validates what it sends.
func (ns Namespace) StoreSubject(tenant string, kind Kind) string {
	return ns.subject(string(SourceStore), tenant, string(kind))
}

// HiperSubject returns the subject of an event hipersync publishes; like
// StoreSubject, tenant or kind may be wildcards for a filter.
func (ns Namespace) HiperSubject(tenant string, kind Kind) string {
	return ns.subject(string(SourceHiper), tenant, string(kind))
}

// Subject returns the subject of s.
func (ns Namespace) Subject(s Subject) string {
	return ns.subject(string(s.Source), s.Tenant, string(s.Kind))
}

// DeadLetterSubject returns where consumer's dead letters about tenant go.
func (ns Namespace) DeadLetterSubject(tenant, consumer string) string {
	return ns.subject(StreamDeadLetter.subjectRoot(), tenant, consumer)
}

// ServiceSubject returns a subject of a service's own stream under the
// namespace, e.g. "t1.invoicewatch.acme.1001" for the tokens
// ("invoicewatch", "acme", "1001"): work a service hands between its
// replicas, which is not an event. The first token must not be a root of
// the event streams (store, hiper, dlq).
func (ns Namespace) ServiceSubject(tokens ...string) string { return ns.subject(tokens...) }

// ParseStoreStatus splits a store's order status subject of this namespace,
// store.<tenant>.order.<status>, whatever the status: stores name their
// statuses their own way (seeds 002 and 004), and a tenant's status map says
// what each means. The status is one lowercase token of [a-z0-9_-].
func (ns Namespace) ParseStoreStatus(subject string) (tenantID, status string, ok bool) {
	rest, found := strings.CutPrefix(subject, ns.subject(string(SourceStore))+".")
	if !found {
		return "", "", false
	}
	tokens := strings.Split(rest, ".")
	if len(tokens) != 3 || tokens[1] != "order" || tenant.ValidID(tokens[0]) != nil || tenant.ValidID(tokens[2]) != nil {
		return "", "", false
	}
	return tokens[0], tokens[2], true
}

// Subject is a parsed event subject.
type Subject struct {
	Source Source
	Tenant string
	Kind   Kind
}

// ParseSubject splits an event subject of this namespace into source,
// tenant and kind. Anything else — another namespace, a dead letter, an
// invalid tenant, a kind the source does not publish — is an error wrapping
// ErrInvalidSubject.
func (ns Namespace) ParseSubject(subject string) (Subject, error) {
	rest := subject
	if ns.Prefix != "" {
		var ok bool
		if rest, ok = strings.CutPrefix(subject, ns.Prefix+"."); !ok {
			return Subject{}, fmt.Errorf("%w %q: not in namespace %q", ErrInvalidSubject, subject, ns.Prefix)
		}
	}
	// Cut, not SplitN: every event published and consumed is parsed, and
	// SplitN allocates its slice of tokens.
	src, rest, ok1 := strings.Cut(rest, ".")
	ten, kind, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return Subject{}, fmt.Errorf("%w %q: want <source>.<tenant>.<kind>", ErrInvalidSubject, subject)
	}
	s := Subject{Source: Source(src), Tenant: ten, Kind: Kind(kind)}
	if s.Source != SourceStore && s.Source != SourceHiper {
		return Subject{}, fmt.Errorf("%w %q: source %q is neither store nor hiper", ErrInvalidSubject, subject, s.Source)
	}
	if err := tenant.ValidID(s.Tenant); err != nil {
		return Subject{}, fmt.Errorf("%w %q: %w", ErrInvalidSubject, subject, err)
	}
	if _, ok := messageTypes[eventType{s.Source, s.Kind}]; !ok {
		return Subject{}, fmt.Errorf("%w %q: %s does not publish kind %q", ErrInvalidSubject, subject, s.Source, s.Kind)
	}
	return s, nil
}

// NewMessage returns an empty message of the type s's events carry.
func (s Subject) NewMessage() (proto.Message, error) { return NewMessage(s.Source, s.Kind) }

// CEType is the CloudEvents type of s's events.
func (s Subject) CEType() string { return CEType(s.Source, s.Kind) }

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
