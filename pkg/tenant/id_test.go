package tenant

import (
	"errors"
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		ok   bool
		want string // part of the error message
	}{
		{"acme", true, ""},
		{"a", true, ""},
		{"loja-1_b2", true, ""},
		{strings.Repeat("x", 64), true, ""},
		{"", false, "empty"},
		{strings.Repeat("x", 65), false, "65 characters"},
		{"Acme", false, `'A' at 0`},
		{"acme.store", false, `'.' at 4`},
		{"acme*", false, `'*' at 4`},
		{"acme>", false, `'>' at 4`},
		{"ac me", false, `' ' at 2`},
		{"loja-ção", false, "at 5"},
	}
	for _, tt := range tests {
		err := ValidID(tt.id)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidID(%q) = %v, want nil", tt.id, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidID(%q) = %v, want ErrInvalidID", tt.id, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidID(%q) = %q, want it to mention %q", tt.id, err, tt.want)
		}
	}
}
