package brokerclient

import (
	"context"
	"sync"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// expiringTokens is a token source that says when each token expires:
// token-broker's Client.
type expiringTokens interface {
	Token(ctx context.Context, tenantID string) (hiper.Token, error)
}

// TokenMargin is how long before the broker's expiry a cached token is
// given up: a call that starts with it must not outlive it.
const TokenMargin = time.Minute

// Cache keeps each tenant's token from token-broker until TokenMargin
// before the expiry the broker gave it, so a Hiper call costs no gRPC call
// for a token the process already holds, and a token-broker rollout or
// outage does not stop calls for a tenant whose token is held. A process
// has one, shared by all its callers (service.Process.Tokens).
//
// A token Hiper refused is dropped here and at the broker: hiper.Session
// invalidates it on a 401 and asks again. Sources that do not say when
// tokens expire (a hiper.KeySource in tests) are asked every time.
//
// A cached token is never what stops a paused or disconnected tenant: the
// broker, which refuses such a tenant's token, is not asked while one is
// held. Every caller therefore looks at the tenant directory before it
// calls Hiper: the invoice-watcher polls only syncing tenants (follow);
// the schedulers run only syncing tenants and cancel a run whose tenant
// stops syncing; the order-forwarder holds a paused tenant's orders and
// asks the broker itself (Bypass) for a tenant that is not syncing, so
// that the broker's refusal is what the order sees.
//
// When an operator connects a tenant again with a new key, the broker
// replaces its token with the one that validated the key, but a token this
// cache holds is kept until its margin or until Hiper refuses it (401);
// no Hiper call is made with a token the broker did not hand out.
type Cache struct {
	src hiper.TokenSources
	exp expiringTokens
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]hiper.Token
}

// NewCache returns a cache in front of src; now is its clock (nil:
// time.Now).
func NewCache(src hiper.TokenSources, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	c := &Cache{src: src, now: now, tokens: map[string]hiper.Token{}}
	c.exp, _ = src.(expiringTokens)
	return c
}

// Cached is src when it is a Cache already (the process's), else a new
// Cache in front of it: a service part gets the process's cache in
// production and its own in a test that hands it the broker's client.
func Cached(src hiper.TokenSources, now func() time.Time) *Cache {
	if c, ok := src.(*Cache); ok {
		return c
	}
	return NewCache(src, now)
}

// Source returns tenant's tokens through the cache.
func (c *Cache) Source(tenant string) hiper.TokenSource {
	return cachedSource{c: c, tenant: tenant, inner: c.src.Source(tenant)}
}

// Bypass returns tenant's tokens from the broker, never from the cache: for
// a tenant that is not syncing, whose token only the broker may refuse. A
// token it hands out is not kept, and the one held is dropped.
func (c *Cache) Bypass(tenant string) hiper.TokenSource {
	c.mu.Lock()
	delete(c.tokens, tenant)
	c.mu.Unlock()
	return c.src.Source(tenant)
}

// Cached returns the tenant's token the cache holds and may still be used,
// without asking anyone: a caller with one spares the context that bounds
// asking the broker.
func (c *Cache) Cached(tenant string) (string, bool) {
	if c.exp == nil {
		return "", false
	}
	c.mu.Lock()
	tok, ok := c.tokens[tenant]
	c.mu.Unlock()
	if ok && c.now().Before(tok.ExpiresAt.Add(-TokenMargin)) {
		return tok.Value, true
	}
	return "", false
}

type cachedSource struct {
	c      *Cache
	tenant string
	inner  hiper.TokenSource
}

func (s cachedSource) Token(ctx context.Context) (string, error) {
	c := s.c
	if c.exp == nil {
		return s.inner.Token(ctx)
	}
	if tok, ok := c.Cached(s.tenant); ok {
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
func (s cachedSource) Invalidate(ctx context.Context, token string) error {
	c := s.c
	c.mu.Lock()
	if c.tokens[s.tenant].Value == token {
		delete(c.tokens, s.tenant)
	}
	c.mu.Unlock()
	return s.inner.Invalidate(ctx, token)
}
