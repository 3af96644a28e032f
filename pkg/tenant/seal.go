package tenant

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrSealBroken means a sealed key could not be opened: wrong master key,
// another tenant's ciphertext, or tampering.
var ErrSealBroken = errors.New("sealed key cannot be opened with the master key")

// Sealer encrypts security keys with AES-256-GCM under the master key
// (HIPERSYNC_MASTER_KEY). The tenant id is the additional data, so a sealed
// key copied onto another tenant's record does not open. Previous master
// keys (HIPERSYNC_MASTER_KEY_PREVIOUS) still open what they sealed, so the
// master key can be rotated without reconnecting every store.
type Sealer struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// KeyVersion is the sealing scheme recorded with keys this build seals.
const KeyVersion = 1

// NewSealer returns a Sealer for a 32-byte master key and the previous
// master keys that may still have sealed some records.
func NewSealer(masterKey []byte, previous ...[]byte) (*Sealer, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	s := &Sealer{aead: aead}
	for i, k := range previous {
		p, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("previous master key %d: %w", i+1, err)
		}
		s.previous = append(s.previous, p)
	}
	return s, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("want 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts key for tenantID: a random nonce followed by the ciphertext.
func (s *Sealer) Seal(tenantID, key string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(key)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(key), []byte(tenantID)), nil
}

// Open decrypts what Seal produced for the same tenantID, under the current
// master key or a previous one.
func (s *Sealer) Open(tenantID string, sealed []byte) (string, error) {
	key, _, err := s.OpenStale(tenantID, sealed)
	return key, err
}

// OpenStale is Open, also saying whether a previous master key sealed it
// (stale): such a key should be sealed again under the current one.
func (s *Sealer) OpenStale(tenantID string, sealed []byte) (key string, stale bool, err error) {
	if plain, ok := open(s.aead, tenantID, sealed); ok {
		return plain, false, nil
	}
	for _, p := range s.previous {
		if plain, ok := open(p, tenantID, sealed); ok {
			return plain, true, nil
		}
	}
	return "", false, ErrSealBroken
}

func open(aead cipher.AEAD, tenantID string, sealed []byte) (string, bool) {
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return "", false
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(tenantID))
	if err != nil {
		return "", false
	}
	return string(plain), true
}
