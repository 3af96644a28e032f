package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/hipersync/hipersync/pkg/config"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/tlsfiles"
)

// Security is how token-broker's gRPC is protected: mutual TLS with the
// caller's identity in its certificate, or nothing at all in a dev run.
type Security struct {
	// TLS is GRPC_TLS_CERT, GRPC_TLS_KEY and GRPC_TLS_CLIENT_CA (the CA
	// that signs the callers' certificates).
	TLS tlsfiles.Files
	// Insecure is HIPERSYNC_INSECURE: serve plaintext without
	// authorization (the dev run and tests only).
	Insecure bool
	// Reflection is GRPC_REFLECTION: register gRPC reflection.
	Reflection bool
}

// loadSecurity reads the variables; token-broker refuses to start with no
// TLS unless HIPERSYNC_INSECURE says so.
func loadSecurity(l *config.Loader) Security {
	s := Security{
		TLS:        tlsfiles.Files{Cert: l.File("GRPC_TLS_CERT"), Key: l.File("GRPC_TLS_KEY"), CA: l.File("GRPC_TLS_CLIENT_CA")},
		Insecure:   l.Bool(config.InsecureEnv, false),
		Reflection: l.Bool("GRPC_REFLECTION", false),
	}
	if err := s.TLS.Validate("GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CLIENT_CA"); err != nil {
		l.Fail("GRPC_TLS_CERT", "%v", err)
	}
	if !s.TLS.Set() && !s.Insecure {
		l.Fail("GRPC_TLS_CERT", "token-broker serves only mutual TLS: set GRPC_TLS_CERT, GRPC_TLS_KEY and GRPC_TLS_CLIENT_CA (or %s=1 for a dev run)", config.InsecureEnv)
	}
	return s
}

// ServerOptions are the gRPC server options of s: TLS credentials that
// require a client certificate of the CA, re-read from disk when they
// change, and per-method authorization. Insecure: none, and a warning.
func (s Security) ServerOptions(log *slog.Logger) ([]grpc.ServerOption, error) {
	if !s.TLS.Set() {
		log.Warn("token-broker serves gRPC WITHOUT TLS or authorization: anyone who reaches it can read every store's tokens (" + config.InsecureEnv + "=1; dev only)")
		return nil, nil
	}
	r, err := tlsfiles.NewReloader(s.TLS)
	if err != nil {
		return nil, fmt.Errorf("GRPC_TLS_CERT: %w", err)
	}
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(r.ServerConfig())),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := authorize(ctx, info.FullMethod, log); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := authorize(ss.Context(), info.FullMethod, log); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}, nil
}

// serviceMethods are what any hipersync service may call: tokens only.
var serviceMethods = map[string]bool{
	brokerv1.TokenService_GetToken_FullMethodName:        true,
	brokerv1.TokenService_InvalidateToken_FullMethodName: true,
}

// CallerIdentity is the identity in the verified client certificate of the
// call (spiffe://hipersync/<service>).
func CallerIdentity(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", errors.New("no verified client certificate")
	}
	id := tlsfiles.Identity(ti.State.VerifiedChains[0][0])
	if id == "" {
		return "", fmt.Errorf("the certificate of %q carries no %s identity", ti.State.VerifiedChains[0][0].Subject.CommonName, tlsfiles.IdentityPrefix)
	}
	return id, nil
}

// authorize lets health checks through, tokens to every hipersync
// identity, and everything else (tenant management, reflection) only to
// the admin identity.
func authorize(ctx context.Context, method string, log *slog.Logger) error {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return nil
	}
	id, err := CallerIdentity(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "%v", err)
	}
	if serviceMethods[method] || id == tlsfiles.Admin {
		return nil
	}
	log.Warn("refused a call: tenant management needs the admin identity", "caller", id, "method", method)
	return status.Errorf(codes.PermissionDenied, "%s may not call %s: it needs the identity %s", id, method, tlsfiles.Admin)
}
