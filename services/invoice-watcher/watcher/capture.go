package watcher

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// maxCapture bounds the body kept for a dead letter; Hiper's order state is
// a few kilobytes.
const maxCapture = 64 << 10

// bodyCapture keeps the raw body of the Hiper answer to one call, so that
// an answer that decodes but makes no sense is dead-lettered as Hiper sent
// it, not as the watcher understood it.
type bodyCapture struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	status int
}

func (c *bodyCapture) body() []byte {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

func (c *bodyCapture) headers() map[string]string {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := map[string]string{"hiper-endpoint": "GET /pedido-de-venda/eventos/{id}"}
	if c.status != 0 {
		h["http-status"] = strconv.Itoa(c.status)
	}
	return h
}

type captureKey struct{}

func withCapture(ctx context.Context, c *bodyCapture) context.Context {
	return context.WithValue(ctx, captureKey{}, c)
}

// captureTransport copies into the request's bodyCapture, if it has one,
// what the answer's body holds as the client reads it. When the client
// retries (a new token after a 401), the last answer is kept.
type captureTransport struct {
	base http.RoundTripper
}

func (t captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	c, _ := r.Context().Value(captureKey{}).(*bodyCapture)
	if err != nil || c == nil {
		return resp, err
	}
	c.mu.Lock()
	c.buf.Reset()
	c.status = resp.StatusCode
	c.mu.Unlock()
	resp.Body = capturingBody{ReadCloser: resp.Body, c: c}
	return resp, nil
}

type capturingBody struct {
	io.ReadCloser
	c *bodyCapture
}

func (b capturingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.c.mu.Lock()
		if room := maxCapture - b.c.buf.Len(); room > 0 {
			b.c.buf.Write(p[:min(n, room)])
		}
		b.c.mu.Unlock()
	}
	return n, err
}
