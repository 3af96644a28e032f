package hipersim

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// newUUID returns a random (version 4) uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return uuidFromBytes(b[:])
}

// uuidFromBytes formats the first 16 bytes of b as a version 4 uuid, so
// deterministic ids (seeds, generated catalogs) look like Hiper's.
func uuidFromBytes(b []byte) string {
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// normalizeID is how ids are compared: .NET Guids ignore case.
func normalizeID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }
