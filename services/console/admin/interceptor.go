package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"

	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	"github.com/hipersync/hipersync/services/console/auth"
)

// authInterceptor puts the caller's Principal in the context of every
// call, from its Authorization header, or fails it as unauthenticated, or
// as rate_limited beyond a store caller's CallLimit.
type authInterceptor struct {
	a       *auth.Authenticator
	callers *callers
}

func (i authInterceptor) authenticate(ctx context.Context, h http.Header) (context.Context, error) {
	p, err := i.a.Bearer(ctx, h.Get("Authorization"))
	if err != nil {
		return ctx, newError(Code(err), err)
	}
	if !i.callers.allow(p) {
		return ctx, newError(connect.CodeResourceExhausted, fmt.Errorf("%w (%s)", ErrRateLimited, p.Subject))
	}
	return auth.With(ctx, p), nil
}

func (i authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := i.authenticate(ctx, req.Header())
		if err != nil {
			return nil, err
		}
		res, err := next(ctx, req)
		return res, detailed(err)
	}
}

func (i authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authenticate(ctx, conn.RequestHeader())
		if err != nil {
			return err
		}
		return detailed(next(ctx, conn))
	}
}

// detailed makes sure a connect error leaving the API carries its refusal,
// whichever path made it; other errors are left as connect answers them.
func detailed(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		withRefusal(ce)
	}
	return err
}

// Handler serves s over gRPC, gRPC-Web and the Connect protocol (HTTP/JSON)
// at the path it returns, every call authenticated by a.
func Handler(s *Server, a *auth.Authenticator) (string, http.Handler) {
	return adminv1connect.NewAdminServiceHandler(s, connect.WithInterceptors(authInterceptor{a: a, callers: newCallers(s.d.StoreCalls)}))
}
