package orders

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/hipersync/hipersync/pkg/tenant"
)

// ErrInvalidOrderID is returned for an empty store order id.
var ErrInvalidOrderID = errors.New("empty order id")

// maxKeyPart bounds the escaped order id in a key; longer ids are hashed.
// Keys are NATS subjects, and a store's order id has no documented limit.
const maxKeyPart = 128

// Key returns the bucket key of a tenant's order: "<tenant>.<id>" where the
// store's order id keeps its letters, digits, '-' and '_' and every other
// byte becomes "=XX" (its hex value). KV keys allow few characters, and a
// '.' or '*' in an order id must not turn into a subject token or wildcard.
// An escaped id longer than 128 characters becomes "=H" and a hash of it;
// the record keeps the original either way.
func Key(tenantID, orderID string) (string, error) {
	if err := tenant.ValidID(tenantID); err != nil {
		return "", err
	}
	if orderID == "" {
		return "", ErrInvalidOrderID
	}
	return tenantID + "." + escape(orderID), nil
}

// TenantPrefix is the key filter of every order of tenant.
func TenantPrefix(tenant string) string { return tenant + ".>" }

const hexDigits = "0123456789ABCDEF"

func escape(id string) string {
	var b strings.Builder
	b.Grow(len(id))
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	if b.Len() <= maxKeyPart {
		return b.String()
	}
	// "=H" cannot come out of the escaping above (H is not a hex digit),
	// so a hashed key never meets an escaped one.
	sum := sha256.Sum256([]byte(id))
	return "=H" + hex.EncodeToString(sum[:20])
}
