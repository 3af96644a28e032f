package orders

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestRecordJSON checks that appendJSON writes what json.Marshal writes,
// byte for byte, for records whose every field (nested ones included) is
// filled by reflection: a field added to Record and not to appendJSON fails
// here.
func TestRecordJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var r Record
		fill(t, rng, reflect.ValueOf(&r).Elem())
		want, werr := json.Marshal(&r)
		got, gerr := r.appendJSON(nil)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("record %d: json.Marshal error %v, appendJSON error %v", i, werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d:\nappendJSON  %s\njson.Marshal %s", i, got, want)
		}
	}
}

// texts are strings that test the escaping: HTML, control characters,
// quotes, invalid UTF-8, U+2028 and U+2029, non-ASCII.
var texts = []string{"", "a", "Ana Souza", `"quoted" \ back`, "<b>&amp;</b>", "tab\tnew\nline\r\b\f\x00\x1f\x7f",
	"ação São Paulo — ok", "\u2028\u2029", "bad \xff\xfe utf8", "😀 emoji", "order.s1.b0-1.0.order.accepted"}

// fill sets v, of any type a Record holds, to random values, zero ones
// included (so omitempty and omitzero are exercised).
func fill(t *testing.T, rng *rand.Rand, v reflect.Value) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		switch rng.IntN(6) {
		case 0:
			v.Set(reflect.ValueOf(time.Time{}))
		case 1:
			v.Set(reflect.ValueOf(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))) // out of JSON's range
		case 2:
			v.Set(reflect.ValueOf(time.Date(2026, 12, 4, 19, 42, 8, 0, time.FixedZone("BRT", -3*3600))))
		default:
			v.Set(reflect.ValueOf(time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC()))
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(texts[rng.IntN(len(texts))])
	case reflect.Int:
		v.SetInt(rng.Int64N(5) - 1)
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Pointer:
		if rng.IntN(3) == 0 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, rng, v.Elem())
	case reflect.Slice:
		switch n := rng.IntN(4); {
		case n == 0:
			return // nil
		case v.Type().Elem().Kind() == reflect.Uint8:
			b := make([]byte, n-1) // empty but not nil, too
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			v.SetBytes(b)
		default:
			s := reflect.MakeSlice(v.Type(), n-1, n-1)
			for i := range n - 1 {
				fill(t, rng, s.Index(i))
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, rng, v.Field(i))
		}
	default:
		t.Fatalf("fill: a field of kind %s (%s): teach fill and appendJSON about it", v.Kind(), v.Type())
	}
}
