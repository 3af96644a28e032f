package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
)

func TestParseAck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		data      string
		duplicate bool
		err       bool
		full      bool
	}{
		{name: "stored", data: `{"stream":"HIPER","seq":12}`},
		{name: "stored with a domain", data: `{"stream":"HIPER","domain":"hub","seq":12}`},
		{name: "duplicate as the server writes it", data: `{"stream":"HIPER","seq":12,"duplicate": true}`, duplicate: true},
		{name: "duplicate as encoding/json writes it", data: `{"stream":"HIPER","seq":12,"duplicate":true}`, duplicate: true},
		{name: "not a duplicate, said", data: `{"stream":"HIPER","seq":12,"duplicate":false}`},
		{name: "other spacing", data: `{ "stream": "HIPER", "seq": 12, "duplicate": true }`, duplicate: true},
		{name: "refused, full", data: `{"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"},"stream":"KV_x"}`, err: true, full: true},
		{name: "refused after the stream", data: `{"stream":"HIPER","error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}`, err: true},
		{name: "no stream", data: `{"seq":1}`, err: true},
		{name: "empty stream", data: `{"stream":"","seq":1}`, err: true},
		{name: "not JSON", data: `+OK`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			duplicate, err := parseAck([]byte(tc.data))
			if duplicate != tc.duplicate || (err != nil) != tc.err || Full(err) != tc.full {
				t.Fatalf("parseAck(%s) = %v, %v; want duplicate %v, error %v, full %v", tc.data, duplicate, err, tc.duplicate, tc.err, tc.full)
			}
		})
	}
}

func TestPublishBatchStoresAndCountsDuplicatesOnce(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	pub := NewPublisher(e.js, e.ns, "hipersync/test", FormatProtobuf)
	// A window of one: each publish waits for the last acknowledgement.
	b := NewAsyncPublisher(e.nc, 1).NewBatch()
	subject := e.ns.HiperSubject("acme", KindCatalogProductUpserted)
	for _, id := range []string{"acme:p1", "acme:p2", "acme:p1"} {
		if err := pub.PublishBatch(t.Context(), b, subject, id, &eventsv1.CatalogProductUpserted{ProductId: id}); err != nil {
			t.Fatal(err)
		}
	}
	stored, failures, err := b.Wait(t.Context(), 10*time.Second)
	if err != nil || len(failures) > 0 || stored != 2 || b.Len() != 3 {
		t.Fatalf("Wait = %d, %v, %v of %d; want 2 stored of 3, the duplicate not counted", stored, failures, err, b.Len())
	}
	s, err := e.js.Stream(t.Context(), e.ns.Stream(StreamHiper))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(t.Context()); err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream holds %v messages (%v), want 2", info.State.Msgs, err)
	}
	// The envelope's checks hold as for Publish: nothing is handed over.
	if err := pub.PublishBatch(t.Context(), b, subject, "x", sampleOrder()); !errors.Is(err, ErrInvalidSubject) || b.Len() != 3 {
		t.Fatalf("an order on the catalog subject: %v, batch of %d; want ErrInvalidSubject, 3", err, b.Len())
	}
}

func TestAsyncPublisherReportsEachRefusal(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	kv, err := e.js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: e.ns.Bucket("full"), MaxBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	b := NewAsyncPublisher(e.nc, 64).NewBatch()
	for i := range 4 {
		m := &nats.Msg{Subject: KeySubject(kv.Bucket(), "k"+string(rune('a'+i))), Data: make([]byte, 400)}
		if err := b.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	// Nobody listens on this subject: no stream, no answer but "no
	// responders", sent again twice before it is given up.
	if err := b.Publish(t.Context(), &nats.Msg{Subject: e.ns.Prefix + ".nowhere", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	stored, failures, err := b.Wait(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	full, lost := 0, 0
	for _, f := range failures {
		switch {
		case Full(f.Err) && f.Index < 4:
			full++
		case errors.Is(f.Err, jetstream.ErrNoStreamResponse) && f.Index == 4:
			lost++
		default:
			t.Errorf("failure %d: %v", f.Index, f.Err)
		}
	}
	if stored+full != 4 || full == 0 || lost != 1 {
		t.Fatalf("%d stored, %d refused as full, %d without a stream (%v); want the bucket full after a few and one without a stream", stored, full, lost, failures)
	}
}

func TestBatchWaitGivesUpAndFreesTheWindow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a := NewAsyncPublisher(e.nc, 1)
	b := a.NewBatch()
	// A responder that never answers holds the only slot.
	sub, err := e.nc.Subscribe(e.ns.Prefix+".silent", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), &nats.Msg{Subject: e.ns.Prefix + ".silent"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Wait(t.Context(), 50*time.Millisecond); err == nil {
		t.Fatal("Wait without an acknowledgement: no error")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := a.NewBatch().Publish(ctx, &nats.Msg{Subject: e.ns.Prefix + ".silent"}); err != nil {
		t.Fatalf("publish after an abandoned batch: %v", err)
	}
}
