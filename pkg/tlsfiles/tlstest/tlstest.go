// Package tlstest makes a CA and certificates in-process for tests of
// mutual TLS, written as PEM files the way a Secret mounts them.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/tlsfiles"
)

// CA is a test certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA certificate's PEM file.
	File string
}

// NewCA makes a CA, its certificate written in a temporary folder.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "hipersync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{cert: cert, key: key, File: filepath.Join(t.TempDir(), "ca.crt")}
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return n
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue writes a certificate for service (its identity
// spiffe://hipersync/<service>, "" for none) valid for the DNS names and
// 127.0.0.1, into dir as <name>.crt and <name>.key, and returns the files
// with the CA. Issuing again into the same dir replaces them (a rotation).
func (ca *CA) Issue(t testing.TB, dir, name, service string, dns ...string) tlsfiles.Files {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dns, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if service != "" {
		u, _ := url.Parse(tlsfiles.IdentityPrefix + service)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	f := tlsfiles.Files{CA: ca.File, Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	// Key first, then certificate under a temporary name renamed in place,
	// as a Secret update swaps files.
	writePEM(t, f.Key+".tmp", "EC PRIVATE KEY", kder)
	writePEM(t, f.Cert+".tmp", "CERTIFICATE", der)
	for _, p := range []string{f.Key, f.Cert} {
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// Serial is the serial number of the certificate in file (to tell a
// rotated certificate from the one before).
func Serial(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}
