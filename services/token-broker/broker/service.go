package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Config wires a Broker.
type Config struct {
	// Issuer asks Hiper for tokens; a *hiper.Client.
	Issuer Issuer
	// Tenants is the tenants key-value bucket.
	Tenants jetstream.KeyValue
	Sealer  *tenant.Sealer
	// Cache tunes the token cache; its Redis may be nil (memory only).
	Cache    TokenCacheConfig
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Broker is token-broker: the tenant registry and the token cache behind the
// TokenService and TenantService gRPC APIs.
type Broker struct {
	Registry *Registry
	Tokens   *TokenCache
	log      *slog.Logger
}

// New starts watching the tenants bucket and returns a Broker; Run drives
// its background work.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	dir, err := tenant.WatchDirectory(ctx, cfg.Tenants, cfg.Log)
	if err != nil {
		return nil, err
	}
	reg := NewRegistry(cfg.Tenants, dir, cfg.Sealer, cfg.Issuer, cfg.Log)
	cacheCfg := cfg.Cache
	cacheCfg.Log = cfg.Log
	if cacheCfg.Metrics == nil {
		cacheCfg.Metrics = NewMetrics(cfg.Registry)
	}
	cacheCfg.OnKeyRefused = reg.MarkKeyRefused
	cacheCfg.Sealer = cfg.Sealer
	tokens := NewTokenCache(cfg.Issuer, reg.Key, cacheCfg)
	reg.onConnect = tokens.prime
	reg.onLeave = func(ctx context.Context, id string) {
		if err := tokens.Forget(ctx, id); err != nil {
			cfg.Log.WarnContext(ctx, "forget tokens", "tenant", id, "err", err)
		}
	}
	// Every replica drops the tokens of a tenant that stops syncing, however
	// it learned of it.
	dir.OnChange(func(c tenant.Change) {
		if c.Tenant == nil || !tenant.Syncs(c.Tenant.GetState()) {
			tokens.forgetLocal(c.TenantID)
		}
	})
	return &Broker{Registry: reg, Tokens: tokens, log: cfg.Log}, nil
}

// Run runs the token cache's background work until ctx is done.
func (b *Broker) Run(ctx context.Context) error { return b.Tokens.Run(ctx) }

// Register adds the TokenService and TenantService to s.
func (b *Broker) Register(s grpc.ServiceRegistrar) {
	brokerv1.RegisterTokenServiceServer(s, tokenService{b: b})
	brokerv1.RegisterTenantServiceServer(s, tenantService{b: b})
}

// GetToken returns a valid token for an active tenant.
func (b *Broker) GetToken(ctx context.Context, tenantID string) (hiper.Token, error) {
	if err := b.Registry.Usable(ctx, tenantID); err != nil {
		return hiper.Token{}, err
	}
	tok, err := b.Tokens.Get(ctx, tenantID)
	if err != nil && tenant.Reason(err) == "" && ctx.Err() == nil {
		// Hiper or Redis trouble, not the tenant's fault.
		return hiper.Token{}, fmt.Errorf("%w: %v", tenant.ErrHiperUnavailable, err)
	}
	return tok, err
}

type tokenService struct {
	brokerv1.UnimplementedTokenServiceServer
	b *Broker
}

func (s tokenService) GetToken(ctx context.Context, req *brokerv1.GetTokenRequest) (*brokerv1.GetTokenResponse, error) {
	tok, err := s.b.GetToken(ctx, req.GetTenantId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.GetTokenResponse{Token: tok.Value, ExpiresAt: timestamppb.New(tok.ExpiresAt)}, nil
}

func (s tokenService) InvalidateToken(ctx context.Context, req *brokerv1.InvalidateTokenRequest) (*brokerv1.InvalidateTokenResponse, error) {
	if err := checkID(req.GetTenantId()); err != nil {
		return nil, toStatus(err)
	}
	if req.GetToken() == "" {
		return nil, toStatus(invalid("token is required"))
	}
	dropped, err := s.b.Tokens.Invalidate(ctx, req.GetTenantId(), req.GetToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.InvalidateTokenResponse{Invalidated: dropped}, nil
}

type tenantService struct {
	brokerv1.UnimplementedTenantServiceServer
	b *Broker
}

func (s tenantService) ConnectTenant(ctx context.Context, req *brokerv1.ConnectTenantRequest) (*brokerv1.ConnectTenantResponse, error) {
	t, err := s.b.Registry.Connect(ctx, req.GetTenantId(), req.GetSecurityKey())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.ConnectTenantResponse{Tenant: t}, nil
}

func (s tenantService) PauseTenant(ctx context.Context, req *brokerv1.PauseTenantRequest) (*brokerv1.PauseTenantResponse, error) {
	t, err := s.b.Registry.Pause(ctx, req.GetTenantId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.PauseTenantResponse{Tenant: t}, nil
}

func (s tenantService) ResumeTenant(ctx context.Context, req *brokerv1.ResumeTenantRequest) (*brokerv1.ResumeTenantResponse, error) {
	t, err := s.b.Registry.Resume(ctx, req.GetTenantId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.ResumeTenantResponse{Tenant: t}, nil
}

func (s tenantService) DisconnectTenant(ctx context.Context, req *brokerv1.DisconnectTenantRequest) (*brokerv1.DisconnectTenantResponse, error) {
	t, err := s.b.Registry.Disconnect(ctx, req.GetTenantId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.DisconnectTenantResponse{Tenant: t}, nil
}

func (s tenantService) UpdateTenantSettings(ctx context.Context, req *brokerv1.UpdateTenantSettingsRequest) (*brokerv1.UpdateTenantSettingsResponse, error) {
	t, err := s.b.Registry.UpdateSettings(ctx, req.GetTenantId(), req.GetSettings(), req.GetUpdateMask())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.UpdateTenantSettingsResponse{Tenant: t}, nil
}

func (s tenantService) GetTenant(ctx context.Context, req *brokerv1.GetTenantRequest) (*brokerv1.GetTenantResponse, error) {
	t, err := s.b.Registry.Get(ctx, req.GetTenantId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.GetTenantResponse{Tenant: t}, nil
}

func (s tenantService) ListTenants(ctx context.Context, _ *brokerv1.ListTenantsRequest) (*brokerv1.ListTenantsResponse, error) {
	ts, err := s.b.Registry.List(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &brokerv1.ListTenantsResponse{Tenants: ts}, nil
}

// toStatus turns an error into a gRPC status whose code says who must act
// and whose ErrorInfo carries the stable reason clients branch on.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var code codes.Code
	switch {
	case errors.Is(err, tenant.ErrUnknown):
		code = codes.NotFound
	case errors.Is(err, tenant.ErrNotConnected), errors.Is(err, tenant.ErrPaused):
		code = codes.FailedPrecondition
	case errors.Is(err, tenant.ErrKeyRefused):
		code = codes.PermissionDenied
	case errors.Is(err, tenant.ErrInvalidKey), errors.Is(err, tenant.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, tenant.ErrHiperUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	default:
		code = codes.Internal
	}
	st := status.New(code, err.Error())
	if reason := tenant.Reason(err); reason != "" {
		if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: tenant.ErrorDomain}); derr == nil {
			st = withInfo
		}
	}
	return st.Err()
}
