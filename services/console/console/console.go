// Package console wires the admin API and the web console into one HTTP
// server: gRPC, gRPC-Web and Connect (HTTP/JSON) on the API's path, the
// pages everywhere else. Main is the binary; New is what `hipersync dev`
// embeds.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/services/console/admin"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/web"
)

// DefaultAddr is where the console listens (CONSOLE_ADDR).
const DefaultAddr = ":8088"

// Deps is what a console runs with.
type Deps struct {
	JS      jetstream.JetStream
	NS      events.Namespace
	Tenants brokerv1.TenantServiceClient
	Format  events.Format
	Auth    *auth.Authenticator
	Log     *slog.Logger
	// Credentials mints and revokes stores' NATS credentials; nil, the
	// deployment has no signing key and GetTenantCredentials says so.
	Credentials *natsauth.Issuer
	// StoreCalls bounds each store-role caller's API calls
	// (admin.DefaultStoreCalls when zero).
	StoreCalls admin.CallLimit
}

// Console is the admin API and the web console.
type Console struct {
	Admin   *admin.Server
	Web     *web.Web
	Auth    *auth.Authenticator
	Handler http.Handler
}

// New builds the console; it creates the audit stream.
func New(ctx context.Context, d Deps) (*Console, error) {
	audit, err := admin.OpenAudit(ctx, d.JS, d.NS, d.Log)
	if err != nil {
		return nil, err
	}
	srv := admin.New(admin.Deps{JS: d.JS, NS: d.NS, Tenants: d.Tenants, Audit: audit, Credentials: d.Credentials,
		Publisher: events.NewPublisher(d.JS, d.NS, "hipersync/console", d.Format), StoreCalls: d.StoreCalls})
	w, err := web.New(web.Deps{Admin: srv, Auth: d.Auth, Log: d.Log})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	path, api := admin.Handler(srv, d.Auth)
	mux.Handle(path, api)
	mux.Handle("/", w.Handler())
	return &Console{Admin: srv, Web: w, Auth: d.Auth, Handler: mux}, nil
}

// Listen listens for the console on addr. It is apart from Serve so that a
// process reports ready only once it listens: from then on a caller's
// connection waits in the listener's queue instead of being refused.
func Listen(addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the console on %s (CONSOLE_ADDR): %w", addr, err)
	}
	return lis, nil
}

// Serve serves h on lis, HTTP/1.1 and cleartext HTTP/2 (gRPC) alike, until
// ctx is done; wait returns once it stopped.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, log *slog.Logger) (wait func() error) {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: &protocols,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("console listening", "addr", lis.Addr().String())
	return func() error {
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// AuthConfig reads the authentication settings.
func AuthConfig(l *config.Loader, getenv config.Env) (auth.Config, error) {
	c := auth.Config{
		OIDCIssuer:   l.String("HIPERSYNC_OIDC_ISSUER", ""),
		OIDCAudience: l.String("HIPERSYNC_OIDC_AUDIENCE", ""),
		RoleClaim:    l.String("HIPERSYNC_OIDC_ROLE_CLAIM", "hipersync_role"),
		TenantClaim:  l.String("HIPERSYNC_OIDC_TENANT_CLAIM", "hipersync_tenant"),
		SessionTTL:   l.Duration("HIPERSYNC_SESSION_TTL", 12*time.Hour),
		Insecure:     l.Bool("HIPERSYNC_INSECURE", false),
	}
	if getenv("HIPERSYNC_SESSION_KEY") != "" {
		c.SessionKey = l.Key32("HIPERSYNC_SESSION_KEY")
	}
	if f := getenv("HIPERSYNC_API_KEYS_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return c, fmt.Errorf("HIPERSYNC_API_KEYS_FILE: %w", err)
		}
		c.APIKeys = string(b)
	}
	return c, l.Err()
}

const usage = `usage:
  console                         serve the admin API and the web console
  console new-key <role> <name>   make an API key; role is operator or store:<tenant>
                                  (prints the key, and the line for HIPERSYNC_API_KEYS_FILE)`

// Main runs the console binary.
func Main(ctx context.Context, args []string, getenv config.Env, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 0 {
		switch {
		case args[0] == "new-key" && len(args) == 3:
			key, line, err := auth.NewAPIKey(args[1], args[2])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "API key (give it to %s; it is not stored):\n  %s\nLine for HIPERSYNC_API_KEYS_FILE:\n  %s\n", args[2], key, line)
			return nil
		case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
			fmt.Fprintln(stdout, usage)
			return nil
		}
		return fmt.Errorf("unknown arguments %q\n%s", strings.Join(args, " "), usage)
	}
	l := config.NewLoader(getenv)
	common := l.LoadCommon()
	addr := l.Addr("CONSOLE_ADDR", DefaultAddr)
	storeCalls := admin.CallLimit{
		PerSecond: l.Float("HIPERSYNC_STORE_CALLS_PER_SECOND", admin.DefaultStoreCalls.PerSecond),
		Burst:     l.Int("HIPERSYNC_STORE_CALLS_BURST", admin.DefaultStoreCalls.Burst),
	}
	ac, err := AuthConfig(l, getenv)
	if err != nil {
		return err
	}
	creds, err := natsauth.LoadIssuer(l, common.NATS, service.NamespaceOf(common))
	if err != nil {
		return err
	}
	// Secure by default: no way to authenticate callers, no start.
	a, err := auth.New(ctx, ac)
	if err != nil {
		return err
	}
	return service.Main(ctx, "console", common, getenv, stdout, func(p *service.Process) (service.Runner, error) {
		if ac.Insecure {
			p.Log.Warn("HIPERSYNC_INSECURE=1: every caller without credentials is an operator; for dev and tests only")
		}
		if creds == nil {
			p.Log.Info(natsauth.SigningKeyEnv + " is not set: the console mints no store credentials")
		}
		// An optional Secret not created: minting (or revoking) is off until
		// its files appear, and each call says which is missing.
		for _, err := range creds.Missing() {
			p.Log.Warn("store credentials: " + err.Error() + "; GetTenantCredentials and RevokeTenantCredentials answer FAILED_PRECONDITION until it does")
		}
		c, err := New(ctx, Deps{JS: p.JS, NS: p.NS, Tenants: p.Broker.Tenants, Format: p.Format, Auth: a, Log: p.Log,
			Credentials: creds, StoreCalls: storeCalls})
		if err != nil {
			return nil, err
		}
		lis, err := Listen(addr)
		if err != nil {
			return nil, err
		}
		return service.RunFunc(func(ctx context.Context) error {
			return Serve(ctx, lis, c.Handler, p.Log)()
		}), nil
	})
}
