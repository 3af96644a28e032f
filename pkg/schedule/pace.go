package schedule

import (
	"context"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/pace"
)

// Defaults of the pace of each tenant's calls (pace.New).
const (
	DefaultTenantRate  = 5.0
	DefaultTenantBurst = 10
)

// pacedTokens is a tenant's TokenSource behind the Pacer: a hiper.Session
// asks for a token before every call, so every call waits its turn there,
// and is counted.
type pacedTokens struct {
	hiper.TokenSource
	tenant string
	pacer  *pace.Tenants
	calls  func()
}

func (s pacedTokens) Token(ctx context.Context) (string, error) {
	if err := s.pacer.Wait(ctx, s.tenant); err != nil {
		return "", err
	}
	s.calls()
	return s.TokenSource.Token(ctx)
}
