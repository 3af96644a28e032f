package events

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
)

func TestNamespaceNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix                                     string
		store, hiper, dlqStream                    string
		storeSubjects, hiperSubjects, dlqSubjects  string
		storeSubject, hiperSubject, filter, bucket string
		deadLetter                                 string
	}{
		{
			prefix: "",
			store:  "STORE", hiper: "HIPER", dlqStream: "DEADLETTER",
			storeSubjects: "store.>", hiperSubjects: "hiper.>", dlqSubjects: "dlq.>",
			storeSubject: "store.acme.order.approved", hiperSubject: "hiper.acme.catalog.price.changed",
			filter: "store.*.order.approved", bucket: "tenants", deadLetter: "dlq.acme.order-forwarder",
		},
		{
			prefix: "t1",
			store:  "t1_STORE", hiper: "t1_HIPER", dlqStream: "t1_DEADLETTER",
			storeSubjects: "t1.store.>", hiperSubjects: "t1.hiper.>", dlqSubjects: "t1.dlq.>",
			storeSubject: "t1.store.acme.order.approved", hiperSubject: "t1.hiper.acme.catalog.price.changed",
			filter: "t1.store.*.order.approved", bucket: "t1_tenants", deadLetter: "t1.dlq.acme.order-forwarder",
		},
	}
	for _, tt := range tests {
		ns := Namespace{Prefix: tt.prefix}
		check := func(what, got, want string) {
			t.Helper()
			if got != want {
				t.Errorf("prefix %q: %s = %q, want %q", tt.prefix, what, got, want)
			}
		}
		check("Stream(STORE)", ns.Stream(StreamStore), tt.store)
		check("Stream(HIPER)", ns.Stream(StreamHiper), tt.hiper)
		check("Stream(DEADLETTER)", ns.Stream(StreamDeadLetter), tt.dlqStream)
		check("StreamSubjects(STORE)", ns.StreamSubjects(StreamStore), tt.storeSubjects)
		check("StreamSubjects(HIPER)", ns.StreamSubjects(StreamHiper), tt.hiperSubjects)
		check("StreamSubjects(DEADLETTER)", ns.StreamSubjects(StreamDeadLetter), tt.dlqSubjects)
		check("StoreSubject", ns.StoreSubject("acme", KindOrderApproved), tt.storeSubject)
		check("HiperSubject", ns.HiperSubject("acme", KindCatalogPriceChanged), tt.hiperSubject)
		check("StoreSubject filter", ns.StoreSubject("*", KindOrderApproved), tt.filter)
		check("Bucket", ns.Bucket("tenants"), tt.bucket)
		check("DeadLetterSubject", ns.DeadLetterSubject("acme", "order-forwarder"), tt.deadLetter)
	}
}

func TestNamespaceValidate(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "t1", "ci_42", strings.Repeat("a", 32)} {
		if _, err := NewNamespace(p); err != nil {
			t.Errorf("NewNamespace(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"T1", "a.b", "a-b", "a*", "a>", " ", strings.Repeat("a", 33)} {
		if _, err := NewNamespace(p); !errors.Is(err, ErrInvalidNamespace) {
			t.Errorf("NewNamespace(%q) = %v, want ErrInvalidNamespace", p, err)
		}
	}
}

func TestNamespaceFromEnv(t *testing.T) {
	t.Setenv(NamespaceEnv, "")
	if ns, err := NamespaceFromEnv(); err != nil || ns.Prefix != "" {
		t.Errorf("unset: NamespaceFromEnv() = %+v, %v; want production", ns, err)
	}
	t.Setenv(NamespaceEnv, "staging")
	if ns, err := NamespaceFromEnv(); err != nil || ns.Prefix != "staging" {
		t.Errorf("staging: NamespaceFromEnv() = %+v, %v", ns, err)
	}
	t.Setenv(NamespaceEnv, "Bad.Prefix")
	_, err := NamespaceFromEnv()
	if !errors.Is(err, ErrInvalidNamespace) || !strings.Contains(err.Error(), NamespaceEnv) {
		t.Errorf("invalid: NamespaceFromEnv() error = %v, want ErrInvalidNamespace naming %s", err, NamespaceEnv)
	}
}

func TestParseSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix  string
		subject string
		want    Subject
		wantErr string
	}{
		{"", "store.acme.order.approved", Subject{SourceStore, "acme", KindOrderApproved}, ""},
		{"", "store.acme.order.cancelled", Subject{SourceStore, "acme", KindOrderCancelled}, ""},
		{"", "hiper.acme.order.cancelled", Subject{SourceHiper, "acme", KindOrderCancelled}, ""},
		{"", "hiper.loja-1.catalog.product.upserted", Subject{SourceHiper, "loja-1", KindCatalogProductUpserted}, ""},
		{"", "hiper.x.order.needs_review", Subject{SourceHiper, "x", KindOrderNeedsReview}, ""},
		{"t1", "t1.hiper.acme.stock.changed", Subject{SourceHiper, "acme", KindStockChanged}, ""},

		{"", "store.acme.order.accepted", Subject{}, `store does not publish kind "order.accepted"`},
		{"", "hiper.acme.order.approved", Subject{}, `hiper does not publish kind "order.approved"`},
		{"", "store.acme.order", Subject{}, "does not publish"},
		{"", "store.acme", Subject{}, "want <source>.<tenant>.<kind>"},
		{"", "", Subject{}, "want <source>.<tenant>.<kind>"},
		{"", "dlq.acme.order-forwarder", Subject{}, "neither store nor hiper"},
		{"", "erp.acme.order.approved", Subject{}, "neither store nor hiper"},
		{"", "store.ACME.order.approved", Subject{}, "invalid tenant"},
		{"", "store.*.order.approved", Subject{}, "invalid tenant"},
		{"", "store..order.approved", Subject{}, "invalid tenant"},
		{"", "t1.store.acme.order.approved", Subject{}, "neither store nor hiper"},
		{"t1", "store.acme.order.approved", Subject{}, `not in namespace "t1"`},
		{"t1", "t2.store.acme.order.approved", Subject{}, `not in namespace "t1"`},
		{"t1", "t1store.acme.order.approved", Subject{}, `not in namespace "t1"`},
	}
	for _, tt := range tests {
		ns := Namespace{Prefix: tt.prefix}
		got, err := ns.ParseSubject(tt.subject)
		if tt.wantErr != "" {
			if !errors.Is(err, ErrInvalidSubject) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSubject(%q) in %q = %+v, %v; want ErrInvalidSubject mentioning %q", tt.subject, tt.prefix, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSubject(%q) in %q = %+v, %v; want %+v", tt.subject, tt.prefix, got, err, tt.want)
			continue
		}
		// Building the parsed subject back gives the same subject.
		if back := ns.Subject(got); back != tt.subject {
			t.Errorf("Subject(%+v) = %q, want %q", got, back, tt.subject)
		}
	}
}

func TestKindRegistry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src    Source
		kind   Kind
		msg    proto.Message
		ceType string
	}{
		{SourceStore, KindOrderApproved, &eventsv1.StoreOrderApproved{}, "hipersync.store.order.approved"},
		{SourceStore, KindOrderCancelled, &eventsv1.StoreOrderCancelled{}, "hipersync.store.order.cancelled"},
		{SourceHiper, KindOrderAccepted, &eventsv1.OrderAccepted{}, "hipersync.order.accepted"},
		{SourceHiper, KindOrderRejected, &eventsv1.OrderRejected{}, "hipersync.order.rejected"},
		{SourceHiper, KindOrderNeedsReview, &eventsv1.OrderNeedsReview{}, "hipersync.order.needs_review"},
		{SourceHiper, KindOrderFailed, &eventsv1.OrderFailed{}, "hipersync.order.failed"},
		{SourceHiper, KindOrderCancelled, &eventsv1.OrderCancelled{}, "hipersync.order.cancelled"},
		{SourceHiper, KindOrderShipped, &eventsv1.OrderShipped{}, "hipersync.order.shipped"},
		{SourceHiper, KindOrderWatchExpired, &eventsv1.OrderWatchExpired{}, "hipersync.order.watch_expired"},
		{SourceHiper, KindInvoiceIssued, &eventsv1.InvoiceIssued{}, "hipersync.invoice.issued"},
		{SourceHiper, KindCatalogProductUpserted, &eventsv1.CatalogProductUpserted{}, "hipersync.catalog.product.upserted"},
		{SourceHiper, KindCatalogProductSkipped, &eventsv1.CatalogProductSkipped{}, "hipersync.catalog.product.skipped"},
		{SourceHiper, KindCatalogGuardHeld, &eventsv1.CatalogGuardHeld{}, "hipersync.catalog.guard.held"},
		{SourceHiper, KindCatalogPriceChanged, &eventsv1.CatalogPriceChanged{}, "hipersync.catalog.price.changed"},
		{SourceHiper, KindStockChanged, &eventsv1.StockChanged{}, "hipersync.stock.changed"},
		{SourceHiper, KindOrderProcessing, &eventsv1.OrderProcessing{}, "hipersync.order.processing"},
		{SourceHiper, KindOrderStatusIgnored, &eventsv1.OrderStatusIgnored{}, "hipersync.order.status_ignored"},
		{SourceHiper, KindSyncCompleted, &eventsv1.SyncCompleted{}, "hipersync.sync.completed"},
		{SourceHiper, KindSyncFailed, &eventsv1.SyncFailed{}, "hipersync.sync.failed"},
	}
	if n := len(Kinds(SourceStore)) + len(Kinds(SourceHiper)); n != len(tests) {
		t.Errorf("registry has %d kinds, the table %d: keep them in step", n, len(tests))
	}
	for _, tt := range tests {
		m, err := NewMessage(tt.src, tt.kind)
		if err != nil {
			t.Errorf("NewMessage(%s, %s): %v", tt.src, tt.kind, err)
			continue
		}
		if got, want := m.ProtoReflect().Descriptor().FullName(), tt.msg.ProtoReflect().Descriptor().FullName(); got != want {
			t.Errorf("NewMessage(%s, %s) is a %s, want %s", tt.src, tt.kind, got, want)
		}
		src, kind, err := KindOf(tt.msg)
		if err != nil || src != tt.src || kind != tt.kind {
			t.Errorf("KindOf(%T) = %s, %s, %v; want %s, %s", tt.msg, src, kind, err, tt.src, tt.kind)
		}
		if got := CEType(tt.src, tt.kind); got != tt.ceType {
			t.Errorf("CEType(%s, %s) = %q, want %q", tt.src, tt.kind, got, tt.ceType)
		}
	}
	if _, err := NewMessage(SourceStore, KindOrderShipped); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("NewMessage(store, order.shipped) error = %v, want ErrUnknownKind", err)
	}
	for _, m := range []proto.Message{nil, &eventsv1.DeadLetter{}, &eventsv1.Product{}} {
		if _, _, err := KindOf(m); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("KindOf(%T) error = %v, want ErrUnknownKind", m, err)
		}
	}
}

func TestPublishRejectsMismatch(t *testing.T) {
	t.Parallel()
	// Everything here fails before the publisher touches NATS.
	p := NewPublisher(nil, Namespace{Prefix: "t1"}, "hipersync/test", FormatProtobuf)
	tests := []struct {
		subject, id string
		msg         proto.Message
		want        error
	}{
		{"t1.hiper.acme.order.rejected", "1", &eventsv1.OrderAccepted{}, ErrInvalidSubject},
		{"t1.store.acme.order.cancelled", "1", &eventsv1.OrderCancelled{}, ErrInvalidSubject},
		{"hiper.acme.order.accepted", "1", &eventsv1.OrderAccepted{}, ErrInvalidSubject},
		{"t1.hiper.acme.order.accepted", "1", &eventsv1.DeadLetter{}, ErrUnknownKind},
		{"t1.hiper.Acme.order.accepted", "1", &eventsv1.OrderAccepted{}, tenant.ErrInvalidID},
	}
	for _, tt := range tests {
		if _, err := p.Publish(t.Context(), tt.subject, tt.id, tt.msg); !errors.Is(err, tt.want) {
			t.Errorf("Publish(%s, %T) error = %v, want %v", tt.subject, tt.msg, err, tt.want)
		}
	}
	if _, err := p.Publish(t.Context(), "t1.hiper.acme.order.accepted", "", &eventsv1.OrderAccepted{}); err == nil {
		t.Error("Publish with an empty id succeeded")
	}
}

func TestNamespaceReplicas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		replicas, want int
		valid          bool
	}{{0, 1, true}, {1, 1, true}, {3, 3, true}, {5, 5, true}, {-1, 1, false}, {6, 6, false}} {
		ns := Namespace{Prefix: "x", Replicas: tc.replicas}
		if err := ns.Validate(); (err == nil) != tc.valid {
			t.Errorf("replicas %d: valid=%v, want %v (%v)", tc.replicas, err == nil, tc.valid, err)
		}
		if tc.valid && ns.StreamReplicas() != tc.want {
			t.Errorf("replicas %d: StreamReplicas()=%d, want %d", tc.replicas, ns.StreamReplicas(), tc.want)
		}
	}
}
