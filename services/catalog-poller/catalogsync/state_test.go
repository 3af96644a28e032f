package catalogsync

import (
	"encoding/json"
	"math"
	"testing"
)

// A product's state is stored as json.Marshal writes it, byte for byte,
// whatever its content (what replicas of other versions read and write),
// and reads back as it was.
func TestStateEncodedAsJSONMarshalWritesIt(t *testing.T) {
	states := []productState{
		{},
		{Stub: true, Attrs: &attrs{TypeA: "Cor", NameA: "Azul"}},
		{Attrs: &attrs{}},
		{
			Published: true, Skipped: math.MaxUint64, Hashes: hashes{1, 0, math.MaxUint64, 42}, Price: "10.50", Active: true,
			Indexed: "acme.7891234567895", Attrs: &attrs{TypeA: "Cor", NameA: "Vermelho \"escuro\"", TypeB: "Tamanho", NameB: "<G> & GG\\"},
			Changes: 7, NoCategory: true, NoBrand: true, Unlisted: true, V: stateVersion,
		},
		{Price: "1", Indexed: "ação\tçã\x01\u2028", Attrs: &attrs{NameB: "x"}, Changes: 1, V: 3},
	}
	for _, st := range states {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		got := st.appendJSON(nil)
		if string(got) != string(want) {
			t.Errorf("state encoded as\n%s\nwant\n%s", got, want)
		}
		var back productState
		if err := back.decode(got); err != nil {
			t.Fatalf("decode %s: %v", got, err)
		}
		if !back.same(st) {
			t.Errorf("state read back as %+v, want %+v", back, st)
		}
	}
}

// A state another version wrote (spaces, escapes, fewer hashes, a field
// this one does not know, nulls) reads as encoding/json reads it; what is
// not a state is an error.
func TestStateOfAnotherWritingReadAsEncodingJSONReadsIt(t *testing.T) {
	for _, in := range []string{
		`{"p":true,"h":[1,2,3],"pr":"9.90"}`,
		`{ "p": true, "h": [1,2,3,4,5,6,7], "e": "acme.1" }`,
		`{"h":[1,2,3,4,5,6,7],"v":{"ta":"Cor","na":"Azul \u00e9"},"n":2}`,
		`{"h":[1,2,3,4,5,6,7,8],"v":null,"x":{"y":[1]},"ver":1}`,
		`{"h":[0,0,0,0,0,0,0],"p":false,"s":007}`,
		`{"h":[0,0,0,0,0,0,0]}garbage`,
		`{"h":[1,2,3,4,5,6,7],"a":true,"a":false}`,
		`[]`,
	} {
		var want productState
		wantErr := json.Unmarshal([]byte(in), &want)
		var got productState
		err := got.decode([]byte(in))
		if (err != nil) != (wantErr != nil) || err == nil && !got.same(want) {
			t.Errorf("%s read as %+v (%v), want %+v (%v)", in, got, err, want, wantErr)
		}
	}
}
