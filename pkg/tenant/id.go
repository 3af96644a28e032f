package tenant

import (
	"errors"
	"fmt"
)

// ErrInvalidID is a string that cannot name a tenant (ValidID).
var ErrInvalidID = errors.New("invalid tenant")

const maxTenantLen = 64

// ValidID reports whether id can name a tenant: 1 to 64 of a-z, 0-9, '_'
// and '-'. The rule keeps a tenant one NATS subject token and one KV key.
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty; want 1 to %d characters of a-z, 0-9, '_' or '-'", ErrInvalidID, maxTenantLen)
	}
	if len(id) > maxTenantLen {
		return fmt.Errorf("%w: %d characters long; want at most %d", ErrInvalidID, len(id), maxTenantLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: character %q at %d; want only a-z, 0-9, '_' or '-'", ErrInvalidID, id, rune(c), i)
		}
	}
	return nil
}
