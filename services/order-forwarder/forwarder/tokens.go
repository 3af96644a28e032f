package forwarder

import (
	"context"
	"sync"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// expiringTokens is a token source that says when each token expires:
// token-broker's client.
type expiringTokens interface {
	Token(ctx context.Context, tenantID string) (hiper.Token, error)
}

// tokenMargin is how long before the broker's expiry a cached token is
// given up: a call that starts with it must not outlive it.
const tokenMargin = time.Minute

// tokenCache keeps each tenant's token from token-broker until shortly
// before the expiry the broker gave it, so an order costs no gRPC call (and
// no broker lookup) for a token the replica already holds. A token Hiper
// refused is dropped with the broker's (hiper.Session invalidates it on a
// 401). A pause or a disconnection is seen in the tenant directory before
// any token is used. Sources that do not say when tokens expire are asked
// every time.
type tokenCache struct {
	src hiper.TokenSources
	exp expiringTokens
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]hiper.Token
}

func newTokenCache(src hiper.TokenSources, now func() time.Time) *tokenCache {
	c := &tokenCache{src: src, now: now, tokens: map[string]hiper.Token{}}
	c.exp, _ = src.(expiringTokens)
	return c
}

// Source returns tenant's tokens through the cache.
func (c *tokenCache) Source(tenant string) cachedTokens {
	return cachedTokens{c: c, tenant: tenant, inner: c.src.Source(tenant)}
}

type cachedTokens struct {
	c      *tokenCache
	tenant string
	inner  hiper.TokenSource
}

// Cached returns the tenant's token the cache holds and may still be
// used, without asking anyone: a caller with one spares the context that
// bounds asking the broker.
func (s cachedTokens) Cached() (string, bool) {
	c := s.c
	if c.exp == nil {
		return "", false
	}
	c.mu.Lock()
	tok, ok := c.tokens[s.tenant]
	c.mu.Unlock()
	if ok && c.now().Before(tok.ExpiresAt.Add(-tokenMargin)) {
		return tok.Value, true
	}
	return "", false
}

func (s cachedTokens) Token(ctx context.Context) (string, error) {
	c := s.c
	if c.exp == nil {
		return s.inner.Token(ctx)
	}
	if tok, ok := s.Cached(); ok {
		return tok, nil
	}
	tok, err := c.exp.Token(ctx, s.tenant)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.tokens[s.tenant] = tok
	c.mu.Unlock()
	return tok.Value, nil
}

// Invalidate drops the token Hiper refused, here and at the broker.
func (s cachedTokens) Invalidate(ctx context.Context, token string) error {
	c := s.c
	c.mu.Lock()
	if c.tokens[s.tenant].Value == token {
		delete(c.tokens, s.tenant)
	}
	c.mu.Unlock()
	return s.inner.Invalidate(ctx, token)
}
