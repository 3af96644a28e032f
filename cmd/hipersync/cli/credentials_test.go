package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/hipersync/hipersync/cmd/hipersync/devnats"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// tenant credentials mints a store's .creds over an operator-mode NATS, and
// tenant disconnect revokes them along with the key, over mutual TLS as
// the admin.
func TestCredentialsAreRevokedOnDisconnect(t *testing.T) {
	t.Parallel()
	op, err := natsauth.LoadOperator(t.TempDir(), events.Namespace{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devnats.Start(op, "cli", "127.0.0.1", -1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	st := brokertest.Start(t, brokertest.Options{TLS: true, Tenants: []string{"acme"}})
	admin := st.ClientTLS(t, "admin")
	env := map[string]string{
		"NATS_URL": srv.ClientURL(), "NATS_CREDS": op.Path(natsauth.ServicesCredsFile),
		"HIPERSYNC_NATS_SIGNING_KEY": op.Path(natsauth.StoreSigningFile), "HIPERSYNC_NATS_OPERATOR_KEY": op.Path(natsauth.OperatorKeyFile),
		"HIPERSYNC_NATS_SYSTEM_CREDS": op.Path(natsauth.SystemCredsFile),
		"TOKEN_BROKER_ADDR":           st.BrokerAddr,
		"TOKEN_BROKER_TLS_CA":         admin.CA, "TOKEN_BROKER_TLS_CERT": admin.Cert, "TOKEN_BROKER_TLS_KEY": admin.Key,
	}
	out := filepath.Join(t.TempDir(), "acme.creds")
	r := runEnv(t, env, "tenant", "credentials", "acme", "--out", out, "--expires", "24h")
	if r.code != 0 || !strings.Contains(r.stdout, "_INBOX.acme") || !strings.Contains(r.stdout, "store.acme.>") {
		t.Fatalf("tenant credentials: %+v", r)
	}
	connect := func() error {
		nc, err := nats.Connect(srv.ClientURL(), nats.UserCredentials(out), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
		}
		return err
	}
	if err := connect(); err != nil {
		t.Fatalf("the minted credentials: %v", err)
	}
	if r := runEnv(t, env, "tenant", "credentials", "Not A Tenant"); r.code != 2 {
		t.Fatalf("an invalid tenant: %+v", r)
	}
	if r := runEnv(t, env, "tenant", "disconnect", "acme"); r.code != 0 || strings.Contains(r.stderr, "stay valid") {
		t.Fatalf("tenant disconnect: %+v", r)
	}
	if err := connect(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("after disconnect the store's credentials: want an authorization violation, got %v", err)
	}
	// Without the revocation variables, disconnect says the credentials live on.
	delete(env, "HIPERSYNC_NATS_OPERATOR_KEY")
	if r := runEnv(t, env, "tenant", "disconnect", "acme"); r.code != 0 || !strings.Contains(r.stderr, "stay valid until they expire") {
		t.Fatalf("tenant disconnect without revocation: %+v", r)
	}
}
