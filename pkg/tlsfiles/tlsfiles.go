// Package tlsfiles is mutual TLS from PEM files that are re-read when they
// change on disk (a Secret updated by cert-manager, a rotated certificate):
// no restart is needed. Identities are SPIFFE-style URI SANs,
// spiffe://hipersync/<service>.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// IdentityPrefix starts every hipersync identity; the rest names the
// service ("order-forwarder") or "admin" (the CLI, the console).
const IdentityPrefix = "spiffe://hipersync/"

// Admin is the identity that may manage tenants.
const Admin = IdentityPrefix + "admin"

// Files are a CA bundle and a certificate with its key, as PEM files.
type Files struct {
	CA, Cert, Key string
}

// Set reports whether any file is named.
func (f Files) Set() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Validate reports a half-configured set: prefix names the variables
// (GRPC_TLS_ or TOKEN_BROKER_TLS_).
func (f Files) Validate(certVar, keyVar, caVar string) error {
	var errs []error
	if (f.Cert == "") != (f.Key == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together", certVar, keyVar))
	}
	if f.Set() && f.CA == "" {
		errs = append(errs, fmt.Errorf("%s is required with %s", caVar, certVar))
	}
	return errors.Join(errs...)
}

// Reloader holds the files' contents and reads them again when one
// changes (checked at most once a second, at a handshake).
type Reloader struct {
	files Files

	mu      sync.Mutex
	checked time.Time
	stamp   string
	cert    *tls.Certificate
	pool    *x509.CertPool
}

// NewReloader reads the files once, failing when they do not make a
// certificate and a CA pool.
func NewReloader(f Files) (*Reloader, error) {
	r := &Reloader{files: f}
	if _, _, err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) fileStamp() string {
	var b strings.Builder
	for _, p := range []string{r.files.CA, r.files.Cert, r.files.Key} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

// load returns the current certificate and pool, reading the files again
// if they changed. A change that does not parse (a half-written Secret)
// keeps the previous ones.
func (r *Reloader) load() (*tls.Certificate, *x509.CertPool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && time.Since(r.checked) < time.Second {
		return r.cert, r.pool, nil
	}
	r.checked = time.Now()
	stamp := r.fileStamp()
	if r.cert != nil && stamp == r.stamp {
		return r.cert, r.pool, nil
	}
	cert, pool, err := read(r.files)
	if err != nil {
		if r.cert != nil {
			return r.cert, r.pool, nil
		}
		return nil, nil, err
	}
	r.cert, r.pool, r.stamp = cert, pool, stamp
	return cert, pool, nil
}

func read(f Files) (*tls.Certificate, *x509.CertPool, error) {
	var cert *tls.Certificate
	if f.Cert != "" {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("load the certificate %s: %w", f.Cert, err)
		}
		cert = &c
	} else {
		cert = &tls.Certificate{}
	}
	var pool *x509.CertPool
	if f.CA != "" {
		var err error
		if pool, err = CAPool(f.CA); err != nil {
			return nil, nil, err
		}
	}
	return cert, pool, nil
}

// CAPool reads a PEM bundle of CA certificates.
func CAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the CA %s: %w", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("the CA %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ServerConfig is a server's TLS that requires a client certificate
// signed by the CA; certificate and CA are re-read when they change.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool, err := r.load()
			if err != nil {
				return nil, err
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"},
				Certificates: []tls.Certificate{*cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}, nil
		},
	}
}

// ClientConfig is a client's TLS: the server is checked against the CA
// (re-read when it changes), and the client certificate, when there is
// one, is presented and re-read when it changes.
func (r *Reloader) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// The chain is verified below against the current CA, so that a
		// rotated CA is picked up like a rotated certificate.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool, err := r.load()
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server presented no certificate")
			}
			opts := x509.VerifyOptions{DNSName: cs.ServerName, Roots: pool, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(opts)
			return err
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _, err := r.load()
			return cert, err
		},
	}
}

// Identity is the hipersync identity (URI SAN starting with
// IdentityPrefix) of a verified certificate, or "".
func Identity(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, IdentityPrefix) {
			return s
		}
	}
	return ""
}
