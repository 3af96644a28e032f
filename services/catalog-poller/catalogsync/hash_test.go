package catalogsync

import (
	"hash/fnv"
	"testing"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
)

// The content hashes stored in states are hash/fnv's 64-bit FNV-1a of each
// part and a zero byte: states written before and after compare equal.
func TestPartsHashIsFNV1a(t *testing.T) {
	for _, parts := range [][]string{nil, {""}, {"a"}, {"Cor", "Azul", "", "Tamanho", "GG"}, {"ação", "\x00\xff"}} {
		f := fnv.New64a()
		for _, s := range parts {
			f.Write([]byte(s))
			f.Write([]byte{0})
		}
		if got, want := partsHash(parts...), f.Sum64(); got != want {
			t.Errorf("partsHash(%q) = %x, want %x", parts, got, want)
		}
	}
}

// The base hash is FNV-1a of the always-sent fields in the order records
// were written with: the code in decimal, the barcode, (the brand, before
// stateVersion 1), unit, NCM, price, active, removed, has-variations, and
// the children's ids.
func TestBaseHashKeepsItsParts(t *testing.T) {
	sp := &eventsv1.Product{Code: 1234567, Ean: "7891234567895", Brand: "Marca", Unit: "UN", Ncm: "61091000",
		Price: "49.9", Active: true, HasVariations: true, ChildrenIds: []string{"c1", "c2"}}
	for _, withBrand := range []bool{false, true} {
		parts := []string{"1234567", sp.Ean}
		if withBrand {
			parts = append(parts, sp.Brand)
		}
		parts = append(parts, sp.Unit, sp.Ncm, sp.Price, "true", "false", "true", "c1", "c2")
		f := fnv.New64a()
		for _, s := range parts {
			f.Write([]byte(s))
			f.Write([]byte{0})
		}
		if got, want := baseHash(sp, withBrand), f.Sum64(); got != want {
			t.Errorf("baseHash(withBrand %v) = %x, want %x", withBrand, got, want)
		}
	}
}
