package broker_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/pkg/tlsfiles"
	"github.com/hipersync/hipersync/pkg/tlsfiles/tlstest"
	"github.com/hipersync/hipersync/services/token-broker/broker"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func dial(t testing.TB, addr string, f tlsfiles.Files) *brokerclient.Client {
	t.Helper()
	c, err := brokerclient.DialTLS(addr, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func code(err error) codes.Code {
	var be *brokerclient.Error
	if errors.As(err, &be) {
		return be.Code
	}
	return status.Code(err)
}

// token-broker over mutual TLS: a service's certificate gets tokens and
// nothing else, the admin's manages tenants, no certificate gets nothing.
func TestMutualTLSAndPerMethodAuthorization(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{TLS: true, Tenants: []string{"acme"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	svc := dial(t, st.BrokerAddr, st.ClientTLS(t, "order-forwarder"))
	if tok, err := svc.Token(ctx, "acme"); err != nil || tok.Value == "" {
		t.Fatalf("a service's GetToken: %v", err)
	}
	if err := svc.Invalidate(ctx, "acme", "not-the-token"); err != nil {
		t.Fatalf("a service's InvalidateToken: %v", err)
	}
	for name, call := range map[string]func() error{
		"ConnectTenant": func() error {
			_, err := svc.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: "acme", SecurityKey: strings.Repeat("a", 64)})
			return err
		},
		"UpdateTenantSettings": func() error {
			_, err := svc.Tenants.UpdateTenantSettings(ctx, &brokerv1.UpdateTenantSettingsRequest{TenantId: "acme"})
			return err
		},
		"ListTenants": func() error { _, err := svc.Tenants.ListTenants(ctx, &brokerv1.ListTenantsRequest{}); return err },
	} {
		if err := call(); status.Code(err) != codes.PermissionDenied {
			t.Errorf("a service's %s: want PermissionDenied, got %v", name, err)
		}
	}

	// The admin identity (the CLI) manages tenants.
	if _, err := st.Broker.Tenants.PauseTenant(ctx, &brokerv1.PauseTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatalf("the admin's PauseTenant: %v", err)
	}

	// No client certificate, or one from another CA: refused at the handshake.
	none := dial(t, st.BrokerAddr, tlsfiles.Files{CA: st.CA.File})
	if _, err := none.Token(ctx, "acme"); code(err) != codes.Unavailable {
		t.Fatalf("no client certificate: want the handshake refused, got %v", err)
	}
	other := tlstest.NewCA(t).Issue(t, t.TempDir(), "admin", "admin")
	other.CA = st.CA.File
	if _, err := dial(t, st.BrokerAddr, other).Tenants.ListTenants(ctx, &brokerv1.ListTenantsRequest{}); code(err) != codes.Unavailable {
		t.Fatalf("a certificate of another CA: want the handshake refused, got %v", err)
	}
	// A certificate of the CA without a hipersync identity gets nothing.
	anon := st.CA.Issue(t, t.TempDir(), "anon", "")
	if _, err := dial(t, st.BrokerAddr, anon).Token(ctx, "acme"); code(err) != codes.Unauthenticated {
		t.Fatalf("no identity: want Unauthenticated, got %v", err)
	}
	// Plaintext: refused.
	if _, err := dial(t, st.BrokerAddr, tlsfiles.Files{}).Token(ctx, "acme"); code(err) != codes.Unavailable {
		t.Fatalf("plaintext: want refused, got %v", err)
	}
}

// A certificate renewed on disk (cert-manager updating the Secret) is
// served from the next handshake on, without a restart.
func TestRotatedCertificateIsPickedUp(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{TLS: true})
	admin := st.ClientTLS(t, "admin")
	served := func() string {
		cert, err := tls.LoadX509KeyPair(admin.Cert, admin.Key)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(st.CA.File)
		pool.AppendCertsFromPEM(ca)
		conn, err := tls.Dial("tcp", st.BrokerAddr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := served()
	if before != tlstest.Serial(t, st.ServerTLS.Cert) {
		t.Fatal("the server does not serve its certificate file")
	}
	rotated := st.CA.Issue(t, filepath.Dir(st.ServerTLS.Cert), "token-broker", "token-broker", "localhost")
	want := tlstest.Serial(t, rotated.Cert)
	testkit.WaitFor(t, 10*time.Second, "the rotated certificate to be served", func() bool { return served() == want })

	// Calls keep working across the rotation.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := st.Broker.Tenants.ListTenants(ctx, &brokerv1.ListTenantsRequest{}); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
}

// Without TLS settings token-broker refuses to start, unless
// HIPERSYNC_INSECURE=1 says it is a dev run.
func TestNoTLSRefusesToStart(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HIPERSYNC_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	if _, err := broker.LoadSettings(config.Map(env)); err == nil || !strings.Contains(err.Error(), "GRPC_TLS_CERT") {
		t.Fatalf("want a refusal naming GRPC_TLS_CERT, got %v", err)
	}
	env["HIPERSYNC_INSECURE"] = "1"
	s, err := broker.LoadSettings(config.Map(env))
	if err != nil || !s.Security.Insecure || s.Security.Reflection {
		t.Fatalf("insecure: %+v %v", s.Security, err)
	}
	env["GRPC_TLS_CERT"] = env["HIPERSYNC_MASTER_KEY"] // not a file
	if _, err := broker.LoadSettings(config.Map(env)); err == nil || !strings.Contains(err.Error(), "GRPC_TLS_CERT") {
		t.Fatalf("want GRPC_TLS_CERT refused, got %v", err)
	}
}
