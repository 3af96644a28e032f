package tenant

import (
	"errors"
	"strings"
	"testing"
)

func TestOrderKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ id, want string }{
		{"1001", "acme.1001"},
		{"PED-12_a", "acme.PED-12_a"},
		{"a.b", "acme.a=2Eb"},
		{"a=2Eb", "acme.a=3D2Eb"},
		{"*", "acme.=2A"},
		{">", "acme.=3E"},
		{"12/3 x", "acme.12=2F3=20x"},
		{"ção", "acme.=C3=A7=C3=A3o"},
		{strings.Repeat("x", 128), "acme." + strings.Repeat("x", 128)},
	} {
		got, err := OrderKey("acme", tc.id)
		if err != nil || got != tc.want {
			t.Errorf("OrderKey(%q) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
	long1, _ := OrderKey("acme", strings.Repeat("x", 200))
	long2, _ := OrderKey("acme", strings.Repeat("x", 199)+"y")
	if !strings.HasPrefix(long1, "acme.=H") || long1 == long2 || len(long1) > 100 {
		t.Errorf("long ids: %q %q", long1, long2)
	}
	if _, err := OrderKey("acme", ""); !errors.Is(err, ErrInvalidOrderID) {
		t.Errorf("empty id: %v", err)
	}
	if _, err := OrderKey("ACME", "1"); err == nil {
		t.Error("an invalid tenant made a key")
	}
}
