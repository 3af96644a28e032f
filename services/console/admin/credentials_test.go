package admin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/natstest"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/console"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// A store-role key gets its own store's NATS credentials and nobody
// else's; with them the store connects to an operator-mode NATS and may use
// its own subjects only, until it revokes them. The console is configured
// as the prod overlay does it: the keys are files of an optional Secret,
// created after the console started.
func TestStoreKeyGetsOnlyItsOwnNATSCredentials(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	op, err := natsauth.LoadOperator(t.TempDir(), st.NS)
	if err != nil {
		t.Fatal(err)
	}
	url := natstest.StartServer(t, op.ServerConfig()).URL()
	// Without the account's public key: the issuer asks NATS which
	// account its own user belongs to.
	secret := t.TempDir()
	files := map[string]string{natsauth.SigningKeyEnv: "signing-key", natsauth.OperatorKeyEnv: "operator-key",
		natsauth.SystemCredsEnv: "system-creds"}
	env := map[string]string{}
	for name, file := range files {
		env[name] = filepath.Join(secret, file)
	}
	issuer, err := natsauth.LoadIssuer(config.NewLoader(config.Map(env)),
		config.NATS{URL: url, Creds: op.Path(natsauth.ServicesCredsFile)}, st.NS)
	if err != nil || len(issuer.Missing()) != 3 {
		t.Fatalf("LoadIssuer with the Secret not there yet = %v (missing %v); want an issuer missing its 3 files", err, issuer.Missing())
	}
	c := consoletest.Start(t, st, auth.Config{}, func(d *console.Deps) { d.Credentials = issuer })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Until the Secret is there, the console says which file it lacks.
	_, err = c.Client(c.StoreKeys["acme"]).GetTenantCredentials(ctx, &adminv1.GetTenantCredentialsRequest{TenantId: "acme"})
	wantCode(t, "GetTenantCredentials before the Secret exists", err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), natsauth.SigningKeyEnv+" names "+env[natsauth.SigningKeyEnv]+", which does not exist") {
		t.Errorf("the refusal %q does not name %s and its file", err, natsauth.SigningKeyEnv)
	}
	for name, from := range map[string]string{natsauth.SigningKeyEnv: natsauth.StoreSigningFile,
		natsauth.OperatorKeyEnv: natsauth.OperatorKeyFile, natsauth.SystemCredsEnv: natsauth.SystemCredsFile} {
		b, err := os.ReadFile(op.Path(from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(env[name], b, 0o400); err != nil {
			t.Fatal(err)
		}
	}

	// The operator-mode NATS has the namespace's streams, as production.
	svc, err := nats.Connect(url, nats.UserCredentials(op.Path(natsauth.ServicesCredsFile)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	svcJS, _ := jetstream.New(svc)
	if err := events.EnsureStreams(ctx, svcJS, st.NS); err != nil {
		t.Fatal(err)
	}

	acme := c.Client(c.StoreKeys["acme"])
	_, err = acme.GetTenantCredentials(ctx, &adminv1.GetTenantCredentialsRequest{TenantId: "beta"})
	wantCode(t, "GetTenantCredentials(beta) with acme's key", err, connect.CodePermissionDenied)
	_, err = acme.RevokeTenantCredentials(ctx, &adminv1.RevokeTenantCredentialsRequest{TenantId: "beta"})
	wantCode(t, "RevokeTenantCredentials(beta) with acme's key", err, connect.CodePermissionDenied)
	_, err = acme.GetTenantCredentials(ctx, &adminv1.GetTenantCredentialsRequest{TenantId: "acme", Expires: durationpb.New(-time.Hour)})
	wantCode(t, "negative expiry", err, connect.CodeInvalidArgument)

	resp, err := acme.GetTenantCredentials(ctx, &adminv1.GetTenantCredentialsRequest{TenantId: "acme", Expires: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatalf("GetTenantCredentials(acme): %v", err)
	}
	if left := time.Until(resp.GetExpiresAt().AsTime()); left < 50*time.Minute || left > time.Hour {
		t.Errorf("expires in %s; want an hour", left)
	}
	if resp.GetInboxPrefix() != natsauth.InboxPrefix(st.NS, "acme") || !strings.HasPrefix(resp.GetUser(), "U") {
		t.Errorf("user %q, inbox prefix %q", resp.GetUser(), resp.GetInboxPrefix())
	}
	file := filepath.Join(t.TempDir(), "acme.creds")
	if err := os.WriteFile(file, []byte(resp.GetCreds()), 0o600); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	store, err := nats.Connect(url, nats.UserCredentials(file), nats.CustomInboxPrefix(resp.GetInboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect with the minted credentials: %v", err)
	}
	defer store.Close()
	storeJS, _ := jetstream.New(store)
	ack, err := storeJS.Publish(ctx, st.NS.StoreSubject("acme", events.KindOrderApproved), []byte(`{"orderId":"1"}`))
	if err != nil || ack.Stream != st.NS.Stream(events.StreamStore) {
		t.Fatalf("publish its own order: %+v %v", ack, err)
	}
	_ = store.Publish(st.NS.StoreSubject("beta", events.KindOrderApproved), []byte(`{"orderId":"2"}`))
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("publish beta's order: want a permissions violation, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publish beta's order: the server did not refuse it")
	}

	// The audit log records who minted them, not the credentials.
	audit, err := acme.ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{})
	if err != nil || len(audit.GetEntries()) == 0 || audit.GetEntries()[0].GetAction() != "GetTenantCredentials" ||
		strings.Contains(audit.GetEntries()[0].GetRequestJson(), "SUA") {
		t.Fatalf("audit after GetTenantCredentials = %v, %v", audit, err)
	}

	// Revoked: the server refuses them from then on.
	if _, err := acme.RevokeTenantCredentials(ctx, &adminv1.RevokeTenantCredentialsRequest{TenantId: "acme"}); err != nil {
		t.Fatalf("RevokeTenantCredentials(acme): %v", err)
	}
	if !testkit.Until(10*time.Second, func() bool {
		var nc *nats.Conn
		if nc, err = nats.Connect(url, nats.UserCredentials(file)); err == nil {
			nc.Close()
		}
		return err != nil
	}) {
		t.Fatal("revoked credentials still connect")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("after revocation: want an authorization violation, got %v", err)
	}
}

// A console without an account signing key says so, instead of minting.
func TestCredentialsRefusedWithoutASigningKey(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Client(c.OperatorKey).GetTenantCredentials(ctx, &adminv1.GetTenantCredentialsRequest{TenantId: "acme"})
	wantCode(t, "GetTenantCredentials without a signing key", err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), natsauth.SigningKeyEnv+" is not set") {
		t.Errorf("the refusal %q does not name %s", err, natsauth.SigningKeyEnv)
	}
	_, err = c.Client(c.OperatorKey).RevokeTenantCredentials(ctx, &adminv1.RevokeTenantCredentialsRequest{TenantId: "acme"})
	wantCode(t, "RevokeTenantCredentials without keys", err, connect.CodeFailedPrecondition)
}
