// Package brokerclient is how services and the CLI talk to token-broker: a
// Hiper token source per tenant, and the tenant registry. Errors come back as
// the tenant package's sentinels, so callers branch with errors.Is whatever
// the transport.
package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/tlsfiles"
)

// ErrUnavailable means token-broker could not be reached; retry later.
var ErrUnavailable = errors.New("token-broker unavailable")

// Client is a connection to token-broker.
type Client struct {
	conn    *grpc.ClientConn
	tokens  brokerv1.TokenServiceClient
	Tenants brokerv1.TenantServiceClient
}

// Dial connects to token-broker at addr (TOKEN_BROKER_ADDR). The connection
// is made lazily and kept; calls carry trace context.
func Dial(addr string, opts ...grpc.DialOption) (*Client, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
	}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial token-broker at %s: %w", addr, err)
	}
	return New(conn), nil
}

// DialTLS connects to token-broker at addr over mutual TLS with f
// (TOKEN_BROKER_TLS_CA, _CERT, _KEY): the server's certificate is checked
// against the CA for addr's host, and the client certificate (this
// process's identity) is presented; both are re-read from disk when they
// change. With no files it is Dial: plaintext.
func DialTLS(addr string, f tlsfiles.Files, opts ...grpc.DialOption) (*Client, error) {
	if !f.Set() {
		return Dial(addr, opts...)
	}
	r, err := tlsfiles.NewReloader(f)
	if err != nil {
		return nil, fmt.Errorf("TOKEN_BROKER_TLS_CERT: %w", err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return Dial(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(r.ClientConfig(host)))}, opts...)...)
}

// New wraps an existing connection.
func New(conn *grpc.ClientConn) *Client {
	return &Client{conn: conn, tokens: brokerv1.NewTokenServiceClient(conn), Tenants: brokerv1.NewTenantServiceClient(conn)}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying connection, for another service of the same
// server (the gRPC health check).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Token returns a valid token for tenantID.
func (c *Client) Token(ctx context.Context, tenantID string) (hiper.Token, error) {
	resp, err := c.tokens.GetToken(ctx, &brokerv1.GetTokenRequest{TenantId: tenantID})
	if err != nil {
		return hiper.Token{}, FromStatus(err)
	}
	return hiper.Token{Value: resp.GetToken(), ExpiresAt: resp.GetExpiresAt().AsTime()}, nil
}

// Invalidate reports that Hiper answered 401 to token.
func (c *Client) Invalidate(ctx context.Context, tenantID, token string) error {
	_, err := c.tokens.InvalidateToken(ctx, &brokerv1.InvalidateTokenRequest{TenantId: tenantID, Token: token})
	return FromStatus(err)
}

// Source returns tenantID's tokens as a hiper.TokenSource, for a
// hiper.Session.
func (c *Client) Source(tenantID string) hiper.TokenSource { return source{c: c, tenant: tenantID} }

type source struct {
	c      *Client
	tenant string
}

func (s source) Token(ctx context.Context) (string, error) {
	tok, err := s.c.Token(ctx, s.tenant)
	return tok.Value, err
}

func (s source) Invalidate(ctx context.Context, token string) error {
	return s.c.Invalidate(ctx, s.tenant, token)
}

// FromStatus turns a token-broker gRPC error into an error that matches the
// tenant package's sentinel for its reason (or ErrUnavailable when the broker
// could not be reached), keeping the broker's message.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == tenant.ErrorDomain {
			if sentinel := tenant.ErrorForReason(info.GetReason()); sentinel != nil {
				return &Error{Code: st.Code(), Message: st.Message(), kind: sentinel}
			}
		}
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return &Error{Code: st.Code(), Message: st.Message(), kind: ErrUnavailable}
	}
	return &Error{Code: st.Code(), Message: st.Message()}
}

// Error is a token-broker failure.
type Error struct {
	Code    codes.Code
	Message string
	kind    error
}

func (e *Error) Error() string { return "token-broker: " + e.Message }

// Unwrap exposes the sentinel, if any.
func (e *Error) Unwrap() error { return e.kind }
