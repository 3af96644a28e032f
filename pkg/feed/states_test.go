package feed

import (
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	rec := map[string][]byte{"p1": []byte(`{"p":true}`), "p2": []byte("10|2"), "a-long-product-id": make([]byte, 300)}
	got, err := decodeRecord(encodeRecord(rec))
	if err != nil || len(got) != len(rec) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for id, st := range rec {
		if string(got[id]) != string(st) {
			t.Fatalf("%s: %q, want %q", id, got[id], st)
		}
	}
	b := encodeRecord(rec)
	for _, bad := range [][]byte{nil, {9}, b[:len(b)-1], append([]byte{recordVersion}, 0xff)} {
		if _, err := decodeRecord(bad); !errors.Is(err, errBadRecord) {
			t.Fatalf("decode %v: %v, want errBadRecord", bad, err)
		}
	}
}
