package personal_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/personal"
)

// eventMessages are the message types of hipersync.events.v1.
func eventMessages(t *testing.T) []protoreflect.MessageDescriptor {
	t.Helper()
	_ = eventsv1.File_hipersync_events_v1_store_proto // registered by the import
	var out []protoreflect.MessageDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("hipersync.events.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Messages().Len(); i++ {
			out = append(out, fd.Messages().Get(i))
		}
		return true
	})
	if len(out) < 20 {
		t.Fatalf("found %d event message types", len(out))
	}
	return out
}

// Every event field is known to name a customer or not: a new field that
// sounds personal, or a new field of a message that carries personal
// data, fails here until pkg/personal's table (or this list) says which.
func TestEventFieldsClassified(t *testing.T) {
	t.Parallel()
	// The fields, of the messages that hold personal data, that hold none.
	public := map[protoreflect.FullName]bool{
		"hipersync.events.v1.StoreOrderApproved.order_id":         true,
		"hipersync.events.v1.StoreOrderApproved.currency":         true,
		"hipersync.events.v1.StoreOrderApproved.shipping_amount":  true,
		"hipersync.events.v1.StoreOrderApproved.approved_at":      true,
		"hipersync.events.v1.StoreOrderApproved.customer":         true,
		"hipersync.events.v1.StoreOrderApproved.billing_address":  true,
		"hipersync.events.v1.StoreOrderApproved.shipping_address": true,
		"hipersync.events.v1.StoreOrderApproved.items":            true,
		"hipersync.events.v1.StoreOrderApproved.payments":         true,
		// A municipality: what a rejection for a wrong code is about.
		"hipersync.events.v1.Address.ibge_city_code": true,
		// Not a person's: the invoice's kind (NFe, NFC-e).
		"hipersync.events.v1.InvoiceIssued.document_type": true,
	}
	holders := map[protoreflect.FullName]bool{"hipersync.events.v1.StoreOrderApproved": true,
		"hipersync.events.v1.Customer": true, "hipersync.events.v1.Address": true}
	sounds := map[string]bool{"email": true, "phone": true, "document": true, "cpf": true, "cnpj": true, "customer": true, "buyer": true,
		"recipient": true, "street": true, "address": true, "postal": true, "cep": true, "notes": true, "registration": true}
	for _, md := range eventMessages(t) {
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			name := fd.FullName()
			if personal.PersonalEventField(name) || public[name] {
				continue
			}
			if holders[md.FullName()] {
				t.Errorf("%s: say in pkg/personal (eventFields) how it is masked, or here that it names no one", name)
				continue
			}
			for _, w := range strings.Split(string(fd.Name()), "_") {
				if sounds[w] {
					t.Errorf("%s sounds personal: say in pkg/personal (eventFields) how it is masked, or here that it names no one", name)
				}
			}
		}
	}
	if !personal.PersonalEventField("hipersync.events.v1.Customer.email") || personal.PersonalEventField("hipersync.events.v1.OrderAccepted.order_id") {
		t.Fatal("PersonalEventField")
	}
}

// fill sets every string field of m, and of the messages in it, to v.
func fill(m protoreflect.Message, v string, depth int) {
	if depth > 3 {
		return
	}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
			if fd.MapKey().Kind() == protoreflect.StringKind && fd.MapValue().Kind() == protoreflect.StringKind {
				m.Mutable(fd).Map().Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString(v))
			}
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := m.Mutable(fd).List()
			e := l.NewElement()
			fill(e.Message(), v, depth+1)
			l.Append(e)
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			m.Mutable(fd).List().Append(protoreflect.ValueOfString(v))
		case fd.Kind() == protoreflect.MessageKind:
			fill(m.Mutable(fd).Message(), v, depth+1)
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(v))
		}
	}
}

// strings of m, by field, for comparing before and after masking.
func stringFields(m protoreflect.Message, out map[string][]string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := string(fd.FullName())
		switch {
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.StringKind {
					out[name] = append(out[name], mv.String())
				}
				return true
			})
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				if fd.Kind() == protoreflect.MessageKind {
					stringFields(v.List().Get(i).Message(), out)
				} else if fd.Kind() == protoreflect.StringKind {
					out[name] = append(out[name], v.List().Get(i).String())
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			stringFields(v.Message(), out)
		case fd.Kind() == protoreflect.StringKind:
			out[name] = append(out[name], v.String())
		}
		return true
	})
}

// Over every event type: what MaskEvent hides names no one any more, and
// nothing else changes.
func TestMaskEventEveryType(t *testing.T) {
	t.Parallel()
	const who = "Ana Souza ana@example.com 529.982.247-25 (11) 98765-4321"
	for _, md := range eventMessages(t) {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
		if err != nil {
			t.Fatal(err)
		}
		m := mt.New()
		fill(m, who, 0)
		before := map[string][]string{}
		stringFields(m, before)
		personal.MaskEvent(m.Interface())
		after := map[string][]string{}
		stringFields(m, after)
		for name, vs := range before {
			for i, v := range vs {
				got := after[name][i]
				if !personal.PersonalEventField(protoreflect.FullName(name)) {
					if got != v {
						t.Errorf("%s: %q became %q; it names no one", name, v, got)
					}
					continue
				}
				for _, part := range []string{"Ana", "Souza", "ana@example.com", "529.982.247-25", "98765-4321"} {
					if strings.Contains(got, part) {
						t.Errorf("%s masked is %q: it still holds %q", name, got, part)
					}
				}
			}
		}
	}
}

// approval is a store order whose every personal field is set, with notes.
func approval(notes string) *eventsv1.StoreOrderApproved {
	addr := &eventsv1.Address{Street: "Rua Augusta", Number: "1500", Complement: "Apto 12", District: "Consolação",
		PostalCode: "01310-100", IbgeCityCode: "3550308"}
	return &eventsv1.StoreOrderApproved{
		OrderId: "1001", Currency: "BRL",
		Customer: &eventsv1.Customer{Document: "52998224725", Email: "joana.silva@example.com", Name: "Joana da Silva",
			TradeName: "Padaria Joana", StateRegistration: "110042490114"},
		BillingAddress: addr, ShippingAddress: proto.Clone(addr).(*eventsv1.Address),
		Items: []*eventsv1.OrderItem{{Ean: "7891234567895", Quantity: "1", UnitPrice: "10.00"}},
		Notes: notes,
	}
}

func TestMaskEvent(t *testing.T) {
	t.Parallel()
	o := approval("Entregar para Joana da Silva, tel (11) 98765-4321 ou joana@mail.com; nota 7891234567895")
	personal.MaskEvent(o)
	c := o.GetCustomer()
	for _, tt := range []struct{ got, want string }{
		{c.GetDocument(), "*********25"},
		{c.GetEmail(), "j***@e***.com"},
		{c.GetName(), "J*** d*** S***"},
		{c.GetTradeName(), "P*** J***"},
		{c.GetStateRegistration(), "**********14"},
		{o.GetBillingAddress().GetStreet(), "R*** A***"},
		{o.GetShippingAddress().GetStreet(), "R*** A***"},
		{o.GetShippingAddress().GetNumber(), "****"},
		{o.GetShippingAddress().GetComplement(), "A*** 1***"},
		{o.GetShippingAddress().GetDistrict(), "C***"},
		{o.GetShippingAddress().GetPostalCode(), "01310-***"},
		{o.GetShippingAddress().GetIbgeCityCode(), "3550308"},
		{o.GetNotes(), "Entregar para ***, tel *** ou ***; nota 7891234567895"},
		{o.GetOrderId(), "1001"},
		{o.GetItems()[0].GetEan(), "7891234567895"},
	} {
		if tt.got != tt.want {
			t.Errorf("masked %q, want %q", tt.got, tt.want)
		}
	}
	// Events without personal data, and nil, are left alone.
	acc := &eventsv1.OrderAccepted{OrderId: "1001", HiperOrderId: "h-1"}
	personal.MaskEvent(acc)
	personal.MaskEvent(nil)
	if acc.GetOrderId() != "1001" || acc.GetHiperOrderId() != "h-1" {
		t.Fatalf("OrderAccepted changed: %v", acc)
	}
}

func TestMaskEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ana@example.com":             "a***@e***.com",
		"ana.souza@empresa.com.br":    "a***@e***.com.br",
		"x@mail.empresa.com.br":       "x***@m***.com.br",
		"not an address":              "n*** a*** a***",
		"":                            "",
		"@example.com":                "***",
		"Ana.Souza+loja@gmail.com.br": "A***@g***.com.br",
	} {
		if got := personal.MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}
