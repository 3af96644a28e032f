package events

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
)

// contractOrderJSON is the example of CONTRACT.md, verbatim.
const contractOrderJSON = `{
  "orderId": "1001",
  "approvedAt": "2026-11-23T12:00:00Z",
  "currency": "BRL",
  "customer": {"document": "52998224725", "email": "ana@example.com", "name": "Ana Souza",
               "tradeName": "", "stateRegistration": ""},
  "billingAddress":  {"street": "Rua Principal", "number": "01", "complement": "",
                      "district": "Centro", "postalCode": "88351001", "ibgeCityCode": "4202909"},
  "shippingAddress": {"street": "Rua Principal", "number": "22", "complement": "Sala 2",
                      "district": "Centro", "postalCode": "88351001", "ibgeCityCode": "4202909"},
  "items": [{"productId": "34852cf6-f222-4d61-86d1-045a1aee66f4", "quantity": "1", "unitPrice": "99.99"},
            {"ean": "7891234567895", "quantity": "2", "unitPrice": "10.00"}],
  "payments": [{"method": "PIX", "installments": 1, "amount": "119.99"}],
  "shippingAmount": "0.00",
  "notes": ""
}`

func sampleOrder() *eventsv1.StoreOrderApproved {
	return &eventsv1.StoreOrderApproved{
		OrderId:    "1001",
		ApprovedAt: timestamppb.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)),
		Currency:   "BRL",
		Customer:   &eventsv1.Customer{Document: "52998224725", Email: "ana@example.com", Name: "Ana Souza"},
		BillingAddress: &eventsv1.Address{Street: "Rua Principal", Number: "01", District: "Centro",
			PostalCode: "88351001", IbgeCityCode: "4202909"},
		ShippingAddress: &eventsv1.Address{Street: "Rua Principal", Number: "22", Complement: "Sala 2",
			District: "Centro", PostalCode: "88351001", IbgeCityCode: "4202909"},
		Items: []*eventsv1.OrderItem{
			{ProductId: "34852cf6-f222-4d61-86d1-045a1aee66f4", Quantity: "1", UnitPrice: "99.99"},
			{Ean: "7891234567895", Quantity: "2", UnitPrice: "10.00"},
		},
		Payments:       []*eventsv1.Payment{{Method: "PIX", Installments: 1, Amount: "119.99"}},
		ShippingAmount: "0.00",
	}
}

func sampleCancel() *eventsv1.StoreOrderCancelled {
	return &eventsv1.StoreOrderCancelled{
		OrderId:     "1001",
		Reason:      "customer request",
		CancelledAt: timestamppb.New(time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)),
	}
}

func mustMarshal(t testing.TB, f Format, m proto.Message) []byte {
	t.Helper()
	b, err := f.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %T as %s: %v", m, f, err)
	}
	return b
}

func ct(v string) nats.Header {
	if v == "" {
		return nil
	}
	return nats.Header{HeaderContentType: []string{v}}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	pb := mustMarshal(t, FormatProtobuf, sampleOrder())
	js := mustMarshal(t, FormatJSON, sampleOrder())
	tests := []struct {
		name    string
		header  nats.Header
		data    []byte
		wantErr string // empty: decodes to sampleOrder
	}{
		{"protobuf", ct("application/protobuf"), pb, ""},
		{"x-protobuf", ct("application/x-protobuf"), pb, ""},
		{"json", ct("application/json"), js, ""},
		{"json charset", ct("application/json; charset=utf-8"), js, ""},
		{"json canonical header name", nats.Header{"content-type": {"Application/JSON"}}, js, ""},
		{"sniffed json", nil, js, ""},
		{"sniffed json after spaces", nil, append([]byte(" \n\t"), js...), ""},
		{"sniffed protobuf", nil, pb, ""},
		{"json unknown fields ignored", ct("application/json"),
			[]byte(`{"orderId":"1001","approvedAt":"2026-11-23T12:00:00Z","currency":"BRL",` +
				`"customer":{"document":"52998224725","email":"ana@example.com","name":"Ana Souza","vip":true},` +
				`"billingAddress":{"street":"Rua Principal","number":"01","district":"Centro","postalCode":"88351001","ibgeCityCode":"4202909"},` +
				`"shippingAddress":{"street":"Rua Principal","number":"22","complement":"Sala 2","district":"Centro","postalCode":"88351001","ibgeCityCode":"4202909"},` +
				`"items":[{"productId":"34852cf6-f222-4d61-86d1-045a1aee66f4","quantity":"1","unitPrice":"99.99"},{"ean":"7891234567895","quantity":"2","unitPrice":"10.00"}],` +
				`"payments":[{"method":"PIX","installments":1,"amount":"119.99"}],"shippingAmount":"0.00","channel":"web"}`), ""},

		{"timestamp out of range", ct("application/protobuf"), mustMarshal(t, FormatProtobuf,
			&eventsv1.StoreOrderApproved{OrderId: "1", ApprovedAt: &timestamppb.Timestamp{Seconds: 1 << 40}}), "field approvedAt"},
		{"garbage protobuf", ct("application/protobuf"), []byte{0xff, 0xff, 0xff}, "cannot parse invalid wire-format data"},
		{"json as protobuf", ct("application/protobuf"), js, "application/protobuf"},
		{"protobuf as json", ct("application/json"), pb, "application/json"},
		{"wrong json type names the field", ct("application/json"), []byte(`{"orderId": 1001}`), "orderId"},
		{"truncated json", ct("application/json"), []byte(`{"orderId": "1001"`), "unexpected EOF"},
		{"sniffed bad json", nil, []byte(`{"orderId":`), "application/json"},
		{"xml", ct("application/xml"), []byte(`<order/>`), `unsupported Content-Type "application/xml"`},
		{"structured cloudevents", ct("application/cloudevents+json"), js, "unsupported Content-Type"},
		{"latin-1", ct("application/json; charset=iso-8859-1"), js, `unsupported charset "iso-8859-1"`},
		{"bad header", ct("application/json; ="), js, "parse Content-Type"},
		// The customer's data a malformed payload holds stays out of the
		// error, which goes into logs and dead letters (LGPD).
		{"wrong json type withholds the value", ct("application/json"), []byte(`{"customer":{"document":52998224725}}`),
			"invalid value for string field document: (value withheld)"},
		{"bad json token withholds the value", ct("application/json"), []byte(`{"customer":{"email":ana@example.com}}`),
			"invalid value (value withheld)"},
	}
	for _, tt := range tests {
		got := &eventsv1.StoreOrderApproved{}
		err := Decode(tt.header, tt.data, got)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: Decode: %v", tt.name, err)
			} else if !proto.Equal(got, sampleOrder()) {
				t.Errorf("%s: Decode = %v, want %v", tt.name, got, sampleOrder())
			}
			continue
		}
		var me *MalformedError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &me) {
			t.Errorf("%s: Decode error = %v, want a *MalformedError", tt.name, err)
			continue
		}
		if strings.Contains(err.Error(), "52998224725") || strings.Contains(err.Error(), "ana") {
			t.Errorf("%s: Decode error %q quotes the payload's personal data", tt.name, err)
		}
		if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "StoreOrderApproved") {
			t.Errorf("%s: Decode error = %q, want it to name StoreOrderApproved and mention %q", tt.name, err, tt.wantErr)
		}
	}
	if err := Decode(nil, pb, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Decode into nil = %v, want ErrMalformed", err)
	}
}

func TestDecodeContractExample(t *testing.T) {
	t.Parallel()
	for _, h := range []nats.Header{ct("application/json"), nil} {
		got := &eventsv1.StoreOrderApproved{}
		if err := Decode(h, []byte(contractOrderJSON), got); err != nil {
			t.Fatalf("Decode(CONTRACT.md example, %v): %v", h, err)
		}
		if !proto.Equal(got, sampleOrder()) {
			t.Errorf("Decode(CONTRACT.md example) = %v, want %v", got, sampleOrder())
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Format{"": FormatProtobuf, "protobuf": FormatProtobuf, " JSON ": FormatJSON, "json": FormatJSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"proto", "xml", "avro"} {
		if _, err := ParseFormat(in); !errors.Is(err, ErrInvalidFormat) {
			t.Errorf("ParseFormat(%q) error = %v, want ErrInvalidFormat", in, err)
		}
	}
	// CONTRACT.md: JSON uses the lowerCamelCase names.
	b := mustMarshal(t, FormatJSON, sampleOrder())
	for _, name := range []string{`"orderId"`, `"approvedAt"`, `"ibgeCityCode"`, `"unitPrice"`, `"shippingAmount"`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("JSON %s lacks %s", b, name)
		}
	}
	if FormatJSON.ContentType() != "application/json" || FormatProtobuf.ContentType() != "application/protobuf" {
		t.Error("wrong content types")
	}
}

func TestHeaderCarrier(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	c := HeaderCarrier(h)
	c.Set("traceparent", "00-abc")
	if got := h["traceparent"]; len(got) != 1 || got[0] != "00-abc" {
		t.Errorf("Set kept the key as %v; want it lowercase as given", h)
	}
	// A client that canonicalised the name is still read.
	h2 := HeaderCarrier(nats.Header{"Traceparent": {"00-def"}})
	if got := h2.Get("traceparent"); got != "00-def" {
		t.Errorf("Get(traceparent) = %q, want 00-def", got)
	}
	if keys := c.Keys(); len(keys) != 1 || keys[0] != "traceparent" {
		t.Errorf("Keys() = %v", keys)
	}
}

// fuzzDecode checks that Decode never panics, that every failure is
// ErrMalformed, and that whatever it accepts survives a re-encode.
func fuzzDecode(f *testing.F, newMsg func() proto.Message, seeds ...proto.Message) {
	for _, m := range seeds {
		for _, c := range []string{"application/protobuf", ""} {
			f.Add(c, mustMarshal(f, FormatProtobuf, m))
		}
		for _, c := range []string{"application/json", "application/json; charset=utf-8", ""} {
			f.Add(c, mustMarshal(f, FormatJSON, m))
		}
	}
	f.Add("application/json", []byte(contractOrderJSON))
	f.Add("", []byte(contractOrderJSON))
	f.Add("application/json", []byte(`{"orderId": 1}`))
	f.Add("application/x-protobuf", []byte{0x0a, 0x04, 0x31, 0x30, 0x30, 0x31})
	f.Add("text/plain", []byte("hello"))
	f.Fuzz(func(t *testing.T, contentType string, data []byte) {
		m := newMsg()
		err := Decode(ct(contentType), data, m)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
			return
		}
		if _, err := proto.Marshal(m); err != nil {
			t.Fatalf("decoded message does not re-encode as protobuf: %v", err)
		}
		if _, err := protojson.Marshal(m); err != nil {
			t.Fatalf("decoded message does not re-encode as JSON: %v", err)
		}
	})
}

func FuzzDecodeStoreOrderApproved(f *testing.F) {
	fuzzDecode(f, func() proto.Message { return &eventsv1.StoreOrderApproved{} }, sampleOrder(), &eventsv1.StoreOrderApproved{})
}

func FuzzDecodeStoreOrderCancelled(f *testing.F) {
	fuzzDecode(f, func() proto.Message { return &eventsv1.StoreOrderCancelled{} }, sampleCancel(), sampleOrder())
}
