// Package natsconn is the one way every hipersync process (each service, the
// dev run, the CLI, the test stacks) connects to NATS: the servers of
// NATS_URL, the identity of NATS_CREDS or NATS_NKEY, and the TLS of
// NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY. What it logs or returns names
// the servers with any password or token redacted.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hipersync/hipersync/pkg/config"
)

// Connect connects to NATS as name (the connection name the server shows)
// with c's identity and TLS, reconnecting for ever. log, when not nil, hears
// of disconnections and reconnections; extra options come last and win.
func Connect(name string, c config.NATS, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := Options(name, c, log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.URL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", config.RedactURL(c.URL), err)
	}
	if log != nil {
		log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted(), "identity", identity(c))
	}
	return nc, nil
}

// Check is a connection's readiness check (telemetry.Health.AddCheck): an
// error while nc is not connected.
func Check(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	}
}

// Drain drains nc (subscriptions first, then what is published) and waits,
// at most timeout, until the drain has finished and the connection is
// closed: closing before that would drop what is still in flight.
func Drain(nc *nats.Conn, timeout time.Duration) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if nc.IsClosed() {
		return nil
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("drain NATS: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-closed:
		if err := nc.LastError(); err != nil && errors.Is(err, nats.ErrDrainTimeout) {
			return fmt.Errorf("drain NATS: %w", err)
		}
		return nil
	case <-t.C:
		nc.Close()
		return fmt.Errorf("drain NATS: not drained after %v; closed", timeout)
	}
}

// Options are the nats.go options of c, for a caller that connects itself.
func Options(name string, c config.NATS, log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	switch {
	case c.Creds != "":
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.NKey != "":
		o, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				log.Warn("disconnected from NATS", "url", config.RedactURL(c.URL), "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			}),
			nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
				log.Error("NATS error", "err", err)
			}),
		)
	}
	return opts, nil
}

func identity(c config.NATS) string {
	switch {
	case c.Creds != "":
		return "creds " + c.Creds
	case c.NKey != "":
		return "nkey " + c.NKey
	}
	return "url"
}
