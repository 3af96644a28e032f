package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strings"
	"sync"

	"connectrpc.com/connect"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/tlsfiles"
	"github.com/hipersync/hipersync/services/console/admin"
	"github.com/hipersync/hipersync/services/console/auth"
)

// The variables of the admin API client (README, "Configuration").
const (
	apiEnv   = "HIPERSYNC_API"
	tokenEnv = "HIPERSYNC_TOKEN"
	apiCAEnv = "HIPERSYNC_API_CA"
)

// exitRefused is the exit code of a call the admin API refused: a token it
// does not accept, or a tenant beyond the token's role.
const exitRefused = 3

// adminAPI is how every admin command reaches the deployment: the admin
// API's generated client, talking to the console at HIPERSYNC_API with
// HIPERSYNC_TOKEN or, without HIPERSYNC_API, to the same handler served in
// this process as an operator, over NATS_URL and TOKEN_BROKER_ADDR. The
// commands have one path either way: the console's handler is where each
// rule (roles, validation, the packages it calls) is applied.
type adminAPI struct {
	adminv1connect.AdminServiceClient
	// local is the in-process handler's NATS connection (nil when the
	// client calls HIPERSYNC_API): progress lines read the pollers' status
	// from it while a call waits.
	local *streams
	close func()
}

func (c *adminAPI) Close() { c.close() }

// needs says which parts of the deployment the in-process handler needs
// for a command besides NATS, which every command needs: the audit log is
// there.
type needs struct{ broker bool }

func (a *app) admin(n needs) (*adminAPI, error) {
	if base := strings.TrimSpace(a.e.Getenv(apiEnv)); base != "" {
		token := strings.TrimSpace(a.e.Getenv(tokenEnv))
		if token == "" {
			return nil, usagef("%s is set but %s is not: give an API key or an OIDC bearer token", apiEnv, tokenEnv)
		}
		if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
			return nil, usagef("%s %q: want the console's URL, such as https://console.example.com", apiEnv, base)
		}
		client := http.DefaultClient
		if ca := strings.TrimSpace(a.e.Getenv(apiCAEnv)); ca != "" {
			pool, err := tlsfiles.CAPool(ca)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", apiCAEnv, err)
			}
			client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true,
				TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}}
		}
		c := adminv1connect.NewAdminServiceClient(client, strings.TrimRight(base, "/"),
			connect.WithInterceptors(auth.BearerToken(token)))
		return &adminAPI{AdminServiceClient: c, close: func() {}}, nil
	}
	return a.localAdmin(n)
}

// localAdmin serves the admin handler in this process, as an operator, and
// returns its client; the two talk over an in-memory connection (no port
// is opened).
func (a *app) localAdmin(n needs) (*adminAPI, error) {
	var d admin.Deps
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	s, err := connectNATS(a.e)
	if err != nil {
		return nil, err
	}
	closers = append(closers, s.Close)
	format, err := events.ParseFormat(config.NewLoader(a.e.Getenv).String(events.FormatEnv, ""))
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("%s: %w", events.FormatEnv, err)
	}
	d.JS, d.NS, d.Publisher = s.js, s.ns, events.NewPublisher(s.js, s.ns, "hipersync/cli", format)
	// The console's audit log, written by the console's code: what it
	// records (mutating calls, reveals) and what it does when a write
	// fails (says so in its log, here on stderr) are one policy, and a
	// tenant command records its calls as much as an orders command.
	if d.Audit, err = admin.JoinAudit(a.ctx, s.js, s.ns, stderrLog(a.e)); err != nil {
		closeAll()
		return nil, err
	}
	if n.broker {
		c, err := dialBroker(a.e)
		if err != nil {
			closeAll()
			return nil, err
		}
		closers = append(closers, func() { _ = c.Close() })
		d.Tenants = c.Tenants
	}
	// Store credentials are minted and revoked with the deployment's keys
	// where this environment has them (natsauth.LoadIssuer: nil without).
	cfg := config.NewLoader(a.e.Getenv)
	common := cfg.LoadCommon()
	issuer, err := natsauth.LoadIssuer(cfg, common.NATS, service.NamespaceOf(common))
	if err != nil {
		closeAll()
		return nil, err
	}
	d.Credentials = issuer
	path, h := adminv1connect.NewAdminServiceHandler(admin.New(d), connect.WithInterceptors(localOperator()))
	mux := http.NewServeMux()
	mux.Handle(path, h)
	l := newPipeListener()
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	closers = append(closers, func() { _ = srv.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: l.dial}}
	c := adminv1connect.NewAdminServiceClient(client, "http://hipersync-cli.local")
	return &adminAPI{AdminServiceClient: c, local: s, close: closeAll}, nil
}

// localOperator is who the in-process handler serves: the person at this
// machine, as an operator (they hold the deployment's own credentials),
// named in the audit log and an order's history as cli:<user>@<host>.
func localOperator() connect.Interceptor {
	return operator{auth.Principal{Subject: cliSubject(), Role: adminv1.Role_ROLE_OPERATOR, Method: "local"}}
}

func cliSubject() string {
	name, host := "unknown", "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		host = h
	}
	return "cli:" + name + "@" + host
}

// stderrLog is the in-process handler's log: what the console would log
// (an audit write that failed), on stderr for the person at the terminal.
func stderrLog(e Env) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}

// operator puts its principal in the context of every call it handles.
type operator struct{ p auth.Principal }

func (o operator) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(auth.With(ctx, o.p), req)
	}
}

func (o operator) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (o operator) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(auth.With(ctx, o.p), conn)
	}
}

// apiError is a failed admin call as a person reads it: the server's
// message, what to do about a refusal, and the code and Portuguese text
// the API gives every error (docs/console.md, "Error codes").
func apiError(err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err
	}
	why, _ := admin.RefusalOf(ce)
	f := apiFailure{msg: ce.Message(), why: why}
	switch ce.Code() {
	case connect.CodeUnauthenticated:
		f.msg, f.refused = fmt.Sprintf("the admin API refused the token (%s): %s", tokenEnv, ce.Message()), true
	case connect.CodePermissionDenied:
		f.msg, f.refused = fmt.Sprintf("the admin API refused: %s", ce.Message()), true
	case connect.CodeUnavailable:
		// Only a call that did not reach the API (no code of its own) is
		// about reaching it: reveal_not_audited, say, is the API's answer.
		if why.Code == "" || why.Code == "unavailable" {
			f.msg = fmt.Sprintf("the admin API cannot be reached (%s): %s", apiEnv, ce.Message())
		}
	}
	return f
}

// apiFailure is a failed admin call: its English message, whether the API
// refused the token or the tenant (exit 3), and the API's code and
// Portuguese text (none from a console older than the codes).
type apiFailure struct {
	msg     string
	refused bool
	why     admin.Refusal
}

func (f apiFailure) Error() string { return f.msg }

// pipeListener hands the in-process server one end of an in-memory
// connection for each dial of the client.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "in-process" }
