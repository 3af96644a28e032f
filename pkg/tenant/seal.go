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
// key copied onto another tenant's record does not open.
type Sealer struct {
	aead    cipher.AEAD
	version uint32
}

// KeyVersion is the version recorded with keys this build seals.
const KeyVersion = 1

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("master key: want 32 bytes, got %d", len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("create cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create gcm: %w", err)
	}
	return &Sealer{aead: aead, version: KeyVersion}, nil
}

// Seal encrypts key for tenantID: a random nonce followed by the ciphertext.
func (s *Sealer) Seal(tenantID, key string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(key)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(key), []byte(tenantID)), nil
}

// Open decrypts what Seal produced for the same tenantID.
func (s *Sealer) Open(tenantID string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", ErrSealBroken
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(tenantID))
	if err != nil {
		return "", ErrSealBroken
	}
	return string(plain), nil
}
