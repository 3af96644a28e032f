package hiper

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"
)

// TokenSource hands out one tenant's Hiper tokens. The token broker's client
// implements it in the services; KeySource does for tests and the dev run.
type TokenSource interface {
	// Token returns a token believed valid.
	Token(ctx context.Context) (string, error)
	// Invalidate reports that Hiper refused token, so that the next Token
	// does not return it again.
	Invalidate(ctx context.Context, token string) error
}

// TokenSources hands out each tenant's TokenSource; token-broker's client
// (*brokerclient.Client) is the one services use.
type TokenSources interface {
	Source(tenant string) TokenSource
}

// Session is a Client bound to one tenant's tokens. When Hiper answers 401 it
// invalidates the token, takes a new one and makes the call once more, so a
// token expiring between two calls costs no failure.
type Session struct {
	client *Client
	tokens TokenSource
}

// Session returns the Client bound to tokens.
func (c *Client) Session(tokens TokenSource) *Session {
	return &Session{client: c, tokens: tokens}
}

// withToken makes a call with a token from s and, after a 401, once more
// with a fresh one. A 401 means Hiper did nothing, so even a sales order is
// safe to post again. Errors of the TokenSource are returned as they are:
// it names its own failures.
func withToken[T any](ctx context.Context, s *Session, call func(ctx context.Context, token string) (T, error)) (T, error) {
	var zero T
	token, err := s.tokens.Token(ctx)
	if err != nil {
		return zero, err
	}
	v, err := call(ctx, token)
	if !errors.Is(err, ErrUnauthorized) {
		return v, err
	}
	if ierr := s.tokens.Invalidate(ctx, token); ierr != nil {
		return zero, errors.Join(err, ierr)
	}
	if token, err = s.tokens.Token(ctx); err != nil {
		return zero, err
	}
	return call(ctx, token)
}

// Products is Client.Products with the session's token.
func (s *Session) Products(ctx context.Context, syncPoint int64) (ProductPage, error) {
	return withToken(ctx, s, func(ctx context.Context, token string) (ProductPage, error) {
		return s.client.Products(ctx, token, syncPoint)
	})
}

// ProductFeed is Client.ProductFeed with the session's token, renewed as
// needed between and within batches.
func (s *Session) ProductFeed(ctx context.Context, from int64) iter.Seq2[ProductBatch, error] {
	return productFeed(ctx, from, s.Products)
}

// Stock is Client.Stock with the session's token.
func (s *Session) Stock(ctx context.Context, syncPoint int64, productID string) (StockLevel, error) {
	return withToken(ctx, s, func(ctx context.Context, token string) (StockLevel, error) {
		return s.client.Stock(ctx, token, syncPoint, productID)
	})
}

// CreateSalesOrder is Client.CreateSalesOrder with the session's token.
func (s *Session) CreateSalesOrder(ctx context.Context, order SalesOrder) (string, error) {
	return withToken(ctx, s, func(ctx context.Context, token string) (string, error) {
		return s.client.CreateSalesOrder(ctx, token, order)
	})
}

// SalesOrderStatus is Client.SalesOrderStatus with the session's token.
func (s *Session) SalesOrderStatus(ctx context.Context, hiperOrderID string) (OrderStatus, error) {
	return withToken(ctx, s, func(ctx context.Context, token string) (OrderStatus, error) {
		return s.client.SalesOrderStatus(ctx, token, hiperOrderID)
	})
}

// CancelSalesOrder is Client.CancelSalesOrder with the session's token.
func (s *Session) CancelSalesOrder(ctx context.Context, hiperOrderID string) error {
	_, err := withToken(ctx, s, func(ctx context.Context, token string) (struct{}, error) {
		return struct{}{}, s.client.CancelSalesOrder(ctx, token, hiperOrderID)
	})
	return err
}

// KeySource is a TokenSource that holds a security key and gets tokens from
// Hiper itself, keeping each until shortly before it expires. Concurrent
// callers share one token call. The services get tokens from the token
// broker instead, the only process that holds keys; this is for the dev run
// and tests.
type KeySource struct {
	client *Client
	key    string

	mu        sync.Mutex
	token     Token
	refreshAt time.Time
	flight    *tokenFlight
}

// tokenFlight is one token call that concurrent callers wait on.
type tokenFlight struct {
	done  chan struct{}
	token Token
	err   error
}

// NewKeySource returns a TokenSource of the tenant holding securityKey.
func NewKeySource(c *Client, securityKey string) *KeySource {
	return &KeySource{client: c, key: securityKey}
}

// maxRefreshMargin is how long before its expiry a token is replaced, at
// most; a short-lived token is replaced when nine tenths of its life are
// gone.
const maxRefreshMargin = time.Minute

// Token returns the cached token or gets a new one.
func (s *KeySource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.token.Value != "" && s.client.now().Before(s.refreshAt) {
		v := s.token.Value
		s.mu.Unlock()
		return v, nil
	}
	f := s.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		// The call outlives a caller that gives up, so that the others
		// waiting on it are not failed by that caller's context; the
		// client's per-call timeout bounds it.
		go s.fetch(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return "", f.err
		}
		return f.token.Value, nil
	case <-ctx.Done():
		return "", fmt.Errorf("get token: %w", context.Cause(ctx))
	}
}

func (s *KeySource) fetch(ctx context.Context, f *tokenFlight) {
	start := s.client.now()
	tok, err := s.client.Token(ctx, s.key)
	s.mu.Lock()
	if err == nil {
		margin := min(maxRefreshMargin, max(tok.ExpiresAt.Sub(start), 0)/10)
		s.token, s.refreshAt = tok, tok.ExpiresAt.Add(-margin)
	}
	s.flight = nil
	s.mu.Unlock()
	f.token, f.err = tok, err
	close(f.done)
}

// Invalidate forgets token if it is the one cached; a token already
// replaced is left alone, so a late report cannot discard a fresh token.
func (s *KeySource) Invalidate(_ context.Context, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token.Value == token {
		s.token, s.refreshAt = Token{}, time.Time{}
	}
	return nil
}
