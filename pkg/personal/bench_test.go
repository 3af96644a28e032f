package personal_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/personal"
)

// What the sync log (events tail, the console) pays for each store order
// it shows masked: a customer, two addresses, and notes that name the
// customer in part and give a phone.
func BenchmarkMaskEvent(b *testing.B) {
	o := approval(strings.Repeat("Entregar para Joana na portaria, falar com SILVA ou na padaria; tel (11) 98765-4321. ", 4))
	b.ReportAllocs()
	for b.Loop() {
		personal.MaskEvent(proto.Clone(o))
	}
}
