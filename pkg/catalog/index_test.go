package catalog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/testkit"
)

func TestNormalizeEAN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"7891234567895", "07891234567895", true},
		{" 07891234567895 ", "07891234567895", true},
		{"12345670", "00000012345670", true},
		{"036000291452", "00036000291452", true},
		{"1234567", "", false},
		{"123456789012345", "", false},
		{"789123456789a", "", false},
		{"", "", false},
		{"7891234.67895", "", false},
	} {
		got, err := NormalizeEAN(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("NormalizeEAN(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidEAN) {
			t.Errorf("NormalizeEAN(%q): %v does not match ErrInvalidEAN", tc.in, err)
		}
	}
	if _, err := IndexKey("Not A Tenant", "7891234567895"); err == nil {
		t.Error("IndexKey accepted an invalid tenant")
	}
}

func TestIndexPutLookupForget(t *testing.T) {
	t.Parallel()
	_, js := testkit.Connect(t)
	ns := events.Namespace{Prefix: testkit.Prefix(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := EnsureIndex(ctx, js, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), ns.Bucket(IndexBucket)) })

	const id = "34852cf6-f222-4d61-86d1-045a1aee66f4"
	if err := Put(ctx, kv, "acme", "7891234567895", id); err != nil {
		t.Fatal(err)
	}
	// The GTIN-14 form of the same barcode finds it; another tenant does not.
	if got, err := Lookup(ctx, kv, "acme", "07891234567895"); err != nil || got != id {
		t.Fatalf("Lookup = %q, %v; want %q", got, err, id)
	}
	if _, err := Lookup(ctx, kv, "beta", "7891234567895"); !errors.Is(err, ErrNotIndexed) {
		t.Fatalf("another tenant's lookup: %v, want ErrNotIndexed", err)
	}
	if _, err := Lookup(ctx, kv, "acme", "abc"); !errors.Is(err, ErrInvalidEAN) {
		t.Fatalf("malformed barcode: %v, want ErrInvalidEAN", err)
	}
	if err := Forget(ctx, kv, "acme", "7891234567895"); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(ctx, kv, "acme", "7891234567895"); !errors.Is(err, ErrNotIndexed) {
		t.Fatalf("after Forget: %v, want ErrNotIndexed", err)
	}
	if err := Forget(ctx, kv, "acme", "7891234567895"); err != nil {
		t.Fatalf("forget twice: %v", err)
	}
}
