package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// ErrInvalidOrderID is an empty store order id.
var ErrInvalidOrderID = errors.New("empty order id")

// maxOrderToken bounds the escaped order id in a key; longer ids are
// hashed. Keys are NATS subjects, and a store's order id has no documented
// limit.
const maxOrderToken = 128

// OrderKey is the one key of a tenant's order, in every KV bucket and
// subject that names an order (the order-forwarder's records, the
// invoice-watcher's records and poll tasks): "<tenant>.<token>", the token
// being OrderToken(orderID).
func OrderKey(tenantID, orderID string) (string, error) {
	if err := ValidID(tenantID); err != nil {
		return "", err
	}
	tok, err := OrderToken(orderID)
	if err != nil {
		return "", err
	}
	return tenantID + "." + tok, nil
}

// OrderKeyPrefix is the key filter of every order of tenant.
func OrderKeyPrefix(tenantID string) string { return tenantID + ".>" }

const hexDigits = "0123456789ABCDEF"

// OrderToken is the order id as one subject token: the store's id keeps its
// letters, digits, '-' and '_' and every other byte becomes "=XX" (its hex
// value), since KV keys allow few characters and a '.' or '*' in an order
// id must not turn into a token or a wildcard. An escaped id longer than
// 128 characters becomes "=H" and a hash of it. Records keep the id as the
// store sent it.
func OrderToken(orderID string) (string, error) {
	if orderID == "" {
		return "", ErrInvalidOrderID
	}
	var b strings.Builder
	b.Grow(len(orderID))
	for i := 0; i < len(orderID); i++ {
		c := orderID[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	if b.Len() <= maxOrderToken {
		return b.String(), nil
	}
	// "=H" cannot come out of the escaping above (H is not a hex digit),
	// so a hashed key never meets an escaped one.
	sum := sha256.Sum256([]byte(orderID))
	return "=H" + hex.EncodeToString(sum[:20]), nil
}
