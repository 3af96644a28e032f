package hiper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hipersync/hipersync/pkg/personal"
)

// Defaults of a Client.
const (
	DefaultTimeout      = 15 * time.Second
	DefaultMaxBodyBytes = 32 << 20
	DefaultUserAgent    = "hipersync"
)

// maxKeptBody bounds the copy of an undecodable body an Error keeps.
const maxKeptBody = 64 << 10

// Client calls the Hiper API. It is safe for concurrent use by any number of
// tenants: the token of each call is an argument (or comes from a Session).
type Client struct {
	base       *url.URL
	http       *http.Client
	timeout    time.Duration
	maxBody    int64
	userAgent  string
	log        *slog.Logger
	now        func() time.Time
	tracerProv trace.TracerProvider
	metrics    *metrics
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send through hc (its Transport, Jar,
// CheckRedirect and Timeout). Each call is still traced (a client span,
// the trace context in its headers); hc itself is not modified.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// WithTimeout bounds each call, reading the answer included. Zero means no
// bound other than the caller's context. The default is DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// WithMaxBodyBytes bounds the size of an answer; a larger one is an error,
// never a silent truncation. The default is DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option {
	return func(c *Client) { c.maxBody = n }
}

// WithUserAgent sets the User-Agent header of every call.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithLogger makes the Client log each call at debug level (endpoint, status,
// duration; never a key or token). By default it logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) { c.log = l }
}

// WithTracerProvider sets where the Client's spans go; by default the global
// provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) { c.tracerProv = tp }
}

// WithMetrics counts every call into reg, by endpoint and status class
// (hipersync_hiper_requests_total), with its latency
// (hipersync_hiper_request_duration_seconds). Several Clients may share one
// registry. Without it nothing is counted.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *Client) { c.metrics = newMetrics(reg) }
}

// WithClock sets the clock that judges when a KeySource's token is due for
// renewal and how far away a Retry-After date is; by default time.Now. Tests
// share one with hiper-sim to expire tokens without sleeping.
func WithClock(now func() time.Time) Option {
	return func(c *Client) { c.now = now }
}

// New returns a Client of the API at baseURL, e.g.
// "https://ms-ecommerce.hiper.com.br/api/v1".
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(strings.TrimSpace(baseURL), "/"))
	if err != nil {
		return nil, fmt.Errorf("parse hiper base url: %w", err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("parse hiper base url %q: want an absolute http or https url", baseURL)
	}
	if base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("parse hiper base url: want no credentials, query or fragment")
	}
	c := &Client{
		base:      base,
		timeout:   DefaultTimeout,
		maxBody:   DefaultMaxBodyBytes,
		userAgent: DefaultUserAgent,
		now:       time.Now,
	}
	for _, opt := range opts {
		opt(c)
	}
	switch {
	case c.timeout < 0:
		return nil, fmt.Errorf("configure hiper client: negative timeout %s", c.timeout)
	case c.maxBody <= 0:
		return nil, fmt.Errorf("configure hiper client: max body bytes must be positive, got %d", c.maxBody)
	case c.now == nil:
		return nil, errors.New("configure hiper client: nil clock")
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.http = instrument(c.http)
	return c, nil
}

// instrument returns a copy of hc (or of a default client) that refuses
// redirects and puts the security key into the token call's path only at
// the last moment (secretTransport): the span of a call (send) and the
// http.Client's errors see the redacted path.
func instrument(hc *http.Client) *http.Client {
	var out http.Client
	if hc != nil {
		out = *hc
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = secretTransport{base: base}
	// Hiper never redirects; a redirect (a hijacked DNS name, a proxy's
	// login page, http to https) would carry the key in the token call's
	// path, or the token, somewhere else. The 3xx is the answer: an error.
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

// endpoint is one of the API's six endpoints.
type endpoint struct {
	op     string // what the caller is doing, for error messages
	method string
	name   string // method and path template, for spans, logs and errors
	// classify, when set, turns an answer into an error class before the
	// generic rules apply; nil leaves the answer to them.
	classify func(status int, env envelope, body []byte) error
	// unsafe marks a call Hiper cannot deduplicate: a failure after the
	// request was written leaves its outcome unknown.
	unsafe bool
	// emptyOK accepts a success with no body at all, for a call whose
	// answer says nothing but errors.
	emptyOK bool
	// plain, when set, reports whether out, decoded from a 2xx answer,
	// is plainly a success that the full classification would pass as it
	// is: the answer is then parsed once, not three times (envelope,
	// classify, decode). A large feed answer costs its parsing.
	plain func(out any) bool
}

// secretKey carries, in a request's context, the security key that
// secretTransport puts in place of redactedKey.
type secretKey struct{}

// redactedKey stands for the security key in the path of the token call
// everywhere above secretTransport: spans, http.Client errors, logs.
const redactedKey = "REDACTED"

// secretTransport puts the security key into the token call's path at the
// last moment. The call's span records the full URL of the request, and
// http.Client puts it in its errors; the key must reach neither.
type secretTransport struct{ base http.RoundTripper }

func (t secretTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	key, ok := r.Context().Value(secretKey{}).(string)
	if !ok || !strings.HasSuffix(r.URL.Path, "/"+redactedKey) {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.URL.Path = strings.TrimSuffix(r.URL.Path, redactedKey) + key
	r.URL.RawPath = ""
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		if msg := redactFold(err.Error(), key); msg != err.Error() {
			err = &redactedError{msg: msg, err: err}
		}
	}
	return resp, err
}

// redactedError is a transport error whose text named a secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// request is one call to make.
type request struct {
	ep    *endpoint
	path  string // escaped, relative to the base URL
	query url.Values
	body  any // encoded as JSON when not nil
	token string
	key   string // the security key, for the token call only
	// personal is what of the body names the customer: Hiper's texts
	// echoing it are redacted (personal.Redact).
	personal []string
}

// answer is what came back.
type answer struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool
}

// errCallTimeout marks the end of a call's own time budget, as opposed to
// the caller's context ending.
var errCallTimeout = errors.New("call timed out")

// call sends req, classifies the answer and decodes a success into out. It
// returns the answer's status, 0 when none arrived.
func (c *Client) call(ctx context.Context, req request, out any) (int, error) {
	start := time.Now()
	ans, e := c.send(ctx, req)
	if e != nil {
		c.metrics.observe(ctx, req.ep, 0, time.Since(start))
		return e.Status, e
	}
	c.metrics.observe(ctx, req.ep, ans.status, time.Since(start))
	return ans.status, c.decode(req, ans, out)
}

// decode classifies an answer and decodes a success into out.
func (c *Client) decode(req request, ans *answer, out any) error {
	if out != nil && req.ep.plain != nil && ans.status >= 200 && ans.status < 300 && !ans.tooLarge {
		if json.Unmarshal(ans.body, out) == nil && req.ep.plain(out) {
			return nil
		}
		// Anything less than plain goes the whole way, from a clean out.
		reflect.ValueOf(out).Elem().SetZero()
	}
	if err := c.classify(req, ans); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(ans.body, out); err != nil {
		return c.fail(req, ans, ErrBadResponse, fmt.Errorf("decode answer: %w", err))
	}
	return nil
}

// send makes one HTTP exchange within the call's time budget and reads the
// whole answer.
func (c *Client) send(parent context.Context, req request) (*answer, *Error) {
	ctx := parent
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(parent, c.timeout, errCallTimeout)
		defer cancel()
	}
	if req.key != "" {
		ctx = context.WithValue(ctx, secretKey{}, req.key)
	}
	var wrote atomic.Bool
	if req.ep.unsafe {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteHeaders: func() { wrote.Store(true) },
		})
	}

	if strings.ContainsFunc(req.token, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, &Error{Op: req.ep.op, Endpoint: req.ep.name, Kind: ErrUnauthorized,
			Err: errors.New("token holds control characters")}
	}
	u := *c.base
	u.RawPath = c.base.EscapedPath() + req.path
	path, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, &Error{Op: req.ep.op, Endpoint: req.ep.name, Err: fmt.Errorf("build request: %w", err)}
	}
	u.Path = path
	u.RawQuery = req.query.Encode()

	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, &Error{Op: req.ep.op, Endpoint: req.ep.name, Err: fmt.Errorf("encode request: %w", err)}
		}
		body = bytes.NewReader(b)
	}
	full := u.String()
	ctx, span := c.startSpan(ctx, req.ep, &u, full)
	defer span.End()
	hr, err := http.NewRequestWithContext(ctx, req.ep.method, full, body)
	if err != nil {
		e := &Error{Op: req.ep.op, Endpoint: req.ep.name, Err: fmt.Errorf("build request: %w", err)}
		endSpan(span, 0, e)
		return nil, e
	}
	hr.Header.Set("Accept", "application/json")
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		hr.Header.Set("User-Agent", c.userAgent)
	}
	if req.token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	// The trace context goes to Hiper with the global propagator, as every
	// service sets it up (telemetry.SetupTracing).
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(hr.Header))

	start := time.Now()
	resp, err := c.http.Do(hr)
	if err != nil {
		e := c.noAnswer(parent, ctx, req, 0, err)
		e.outcomeUnknown = req.ep.unsafe && wrote.Load() && e.Kind == ErrTransient
		c.logCall(parent, req, 0, start, e)
		endSpan(span, 0, e)
		return nil, e
	}
	defer resp.Body.Close()
	ans := &answer{status: resp.StatusCode, header: resp.Header}
	ans.body, err = io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		e := c.noAnswer(parent, ctx, req, resp.StatusCode, fmt.Errorf("read answer: %w", err))
		e.outcomeUnknown = req.ep.unsafe && e.Kind == ErrTransient
		c.logCall(parent, req, resp.StatusCode, start, e)
		endSpan(span, resp.StatusCode, e)
		return nil, e
	}
	if int64(len(ans.body)) > c.maxBody {
		ans.body, ans.tooLarge = ans.body[:c.maxBody], true
	}
	c.logCall(parent, req, resp.StatusCode, start, nil)
	endSpan(span, resp.StatusCode, nil)
	return ans, nil
}

// noAnswer classes a failure to get (or read) an answer: the caller giving
// up is not Hiper's fault; anything else is worth retrying.
func (c *Client) noAnswer(parent, ctx context.Context, req request, status int, err error) *Error {
	e := &Error{Op: req.ep.op, Endpoint: req.ep.name, Status: status}
	switch {
	case parent.Err() != nil:
		e.Err = context.Cause(parent)
	case errors.Is(context.Cause(ctx), errCallTimeout):
		e.Kind = ErrTransient
		e.Err = fmt.Errorf("no answer within %s: %w", c.timeout, context.DeadlineExceeded)
	default:
		e.Kind = ErrTransient
		e.Err = err
	}
	return e
}

func (c *Client) logCall(ctx context.Context, req request, status int, start time.Time, err error) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("endpoint", req.ep.name),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "hiper call", attrs...)
}

// classify turns an answer into an error, or nil for a success to decode.
func (c *Client) classify(req request, ans *answer) error {
	env, envOK := parseEnvelope(ans.body)
	if ans.tooLarge {
		envOK = false
		env = envelope{}
	}
	if req.ep.classify != nil {
		if kind := req.ep.classify(ans.status, env, ans.body); kind != nil {
			return c.failWith(req, ans, env, kind)
		}
	}
	switch s := ans.status; {
	case s >= 200 && s < 300:
		if ans.tooLarge {
			return c.fail(req, ans, ErrBadResponse, fmt.Errorf("answer exceeds %d bytes", c.maxBody))
		}
		if !envOK && req.ep.emptyOK && len(bytes.TrimSpace(ans.body)) == 0 {
			return nil
		}
		if !envOK {
			return c.fail(req, ans, ErrBadResponse, errors.New("answer is not a JSON object"))
		}
		if len(env.Errors) > 0 {
			return c.failWith(req, ans, env, &RejectedError{Status: s, Errors: env.Errors, Message: env.Message})
		}
		return nil
	case s >= 300 && s < 400:
		return c.fail(req, ans, ErrBadResponse, fmt.Errorf("answered with a redirect (%d) to %q, refused: it could carry the key or token elsewhere",
			s, c.redact(req, ans.header.Get("Location"))))
	case s == http.StatusUnauthorized:
		return c.failWith(req, ans, env, ErrUnauthorized)
	case s == http.StatusNotFound && !(req.ep.unsafe && !env.Hiper):
		return c.failWith(req, ans, env, ErrNotFound)
	case s == http.StatusTooManyRequests:
		wait, _ := parseRetryAfter(ans.header.Get("Retry-After"), ans.header.Get("Date"), c.now())
		return c.failWith(req, ans, env, &RateLimitedError{RetryAfter: wait})
	case s == http.StatusRequestTimeout || s >= 500:
		e := c.failWith(req, ans, env, ErrTransient)
		if req.ep.unsafe && hiperRefused(env) {
			// Hiper itself said it did not take the request.
			e.outcomeUnknown = false
		}
		return e
	case s >= 400 && req.ep.unsafe && !env.Hiper:
		// Not Hiper's answer (a proxy's or a firewall's page): whether
		// the request reached Hiper cannot be told.
		return c.fail(req, ans, ErrBadResponse, fmt.Errorf("status %d without Hiper's error envelope", s))
	case s >= 400:
		return c.failWith(req, ans, env, &RejectedError{Status: s, Errors: env.Errors, Message: env.Message})
	default:
		return c.fail(req, ans, ErrBadResponse, fmt.Errorf("unexpected status %d", s))
	}
}

// hiperRefused reports whether a failure's answer is Hiper's own envelope
// saying it refused: its errors, and no id of something created. Only such
// an answer proves an unsafe call (a create) did not take effect.
func hiperRefused(env envelope) bool {
	return env.Hiper && len(env.Errors) > 0 && env.ID == ""
}

// failWith builds the error of an answer whose class is known.
func (c *Client) failWith(req request, ans *answer, env envelope, kind error) *Error {
	e := &Error{
		Op:       req.ep.op,
		Endpoint: req.ep.name,
		Status:   ans.status,
		Errors:   c.redactAll(req, env.Errors),
		Message:  c.redact(req, env.Message),
		Kind:     kind,
	}
	switch k := kind.(type) {
	case *RejectedError:
		k.Errors, k.Message = e.Errors, e.Message
	case *RateLimitedError:
		e.retryAfter, e.hasRetryAfter = k.RetryAfter, ans.header.Get("Retry-After") != ""
	}
	if kind == ErrTransient {
		e.retryAfter, e.hasRetryAfter = parseRetryAfter(ans.header.Get("Retry-After"), ans.header.Get("Date"), c.now())
		if len(e.Errors) == 0 && e.Message == "" && len(ans.body) > 0 {
			// A proxy's HTML page or a stack trace: a little of it says more
			// than the status alone.
			e.Err = fmt.Errorf("body %q", c.redact(req, snippet(ans.body, 200)))
		}
	}
	e.outcomeUnknown = req.ep.unsafe && (kind == ErrTransient || kind == ErrBadResponse)
	return e
}

// fail builds the error of an answer that carries no usable Hiper text,
// keeping a bounded copy of its body.
func (c *Client) fail(req request, ans *answer, kind, cause error) *Error {
	e := &Error{Op: req.ep.op, Endpoint: req.ep.name, Status: ans.status, Kind: kind, Err: cause}
	if req.key == "" {
		// The token call's body would hold the key and a token: never kept.
		e.Body = []byte(c.redact(req, string(ans.body[:min(len(ans.body), maxKeptBody)])))
	}
	e.outcomeUnknown = req.ep.unsafe && (kind == ErrTransient || kind == ErrBadResponse)
	return e
}

// redact removes from a text of an answer the call's secrets and any
// personal data (personal.Redact).
func (c *Client) redact(req request, s string) string {
	for _, secret := range []string{req.key, req.token} {
		s = redactFold(s, secret)
	}
	return personal.Redact(s, req.personal...)
}

// redactFold replaces secret in s whatever its case: a security key is hex,
// and Hiper (or a proxy) may echo it in upper case.
func redactFold(s, secret string) string {
	if secret == "" || !strings.Contains(strings.ToLower(s), strings.ToLower(secret)) {
		return s
	}
	return regexp.MustCompile("(?i)"+regexp.QuoteMeta(secret)).ReplaceAllLiteralString(s, redactedKey)
}

func (c *Client) redactAll(req request, ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = c.redact(req, s)
	}
	return out
}

// snippet returns at most n bytes of b as valid UTF-8 text.
func snippet(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "")
}
