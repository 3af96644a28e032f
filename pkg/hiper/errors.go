package hiper

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The classes of failure. Every error a Client returns matches at most one of
// them with errors.Is, plus ErrOutcomeUnknown where it applies; an error that
// matches none is the caller's own context ending.
var (
	// ErrUnauthorized is a 401: the token is missing, invalid or expired.
	// Get a new token and call again (a Session does so once).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalidKey is a security key Hiper does not accept: a tenant
	// configuration error, not worth retrying until the key changes.
	ErrInvalidKey = errors.New("invalid security key")
	// ErrNothingNew is the product endpoint's answer when nothing changed
	// since the cursor sent. Keep that cursor.
	ErrNothingNew = errors.New("nothing new")
	// ErrNotFound is a 404.
	ErrNotFound = errors.New("not found")
	// ErrRateLimited is a 429; see RetryAfter.
	ErrRateLimited = errors.New("rate limited")
	// ErrRejected is Hiper refusing the request with its own reasons (see
	// RejectedError). Sending the same request again will fail the same way.
	ErrRejected = errors.New("rejected")
	// ErrTransient is a failure worth retrying: a 5xx, a timeout, a broken
	// connection or a truncated answer.
	ErrTransient = errors.New("transient failure")
	// ErrBadResponse is a success status whose body is not what the API
	// documents. Error.Body keeps a bounded copy of it for dead-lettering.
	ErrBadResponse = errors.New("unexpected response")
	// ErrOutcomeUnknown is added to a failed CreateSalesOrder that reached
	// Hiper without a definite answer coming back (a 5xx, a timeout after
	// the request was written, an unreadable success). Hiper has no
	// idempotency key, so the order may exist: retrying blindly can create it
	// twice.
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// Error is a failed Hiper call. Its message names the call, the endpoint and
// the status and includes what Hiper said, with any key or token removed.
type Error struct {
	// Op is what the caller was doing, e.g. "get products".
	Op string
	// Endpoint is the method and path template, e.g.
	// "GET /pedido-de-venda/eventos/{id}".
	Endpoint string
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Errors and Message are Hiper's own texts, when the body carried them.
	Errors  []string
	Message string
	// Body is a bounded copy of a body that could not be decoded, for
	// dead-lettering; nil otherwise.
	Body []byte
	// Kind is the class: one of the sentinels, a *RejectedError or a
	// *RateLimitedError; nil when the caller's context ended.
	Kind error
	// Err is the underlying cause, if any (a network error, a decode error).
	Err error

	outcomeUnknown bool
	retryAfter     time.Duration
	hasRetryAfter  bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": hiper ")
	b.WriteString(e.Endpoint)
	if e.Status != 0 {
		b.WriteString(" answered ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	switch k := e.Kind.(type) {
	case nil:
	case *RateLimitedError:
		b.WriteString(": rate limited")
		if e.hasRetryAfter {
			fmt.Fprintf(&b, ", retry after %s", k.RetryAfter)
		}
	case *RejectedError:
		b.WriteString(": rejected")
	default:
		b.WriteString(": ")
		b.WriteString(k.Error())
	}
	writeHiperText(&b, e.Errors, e.Message)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.outcomeUnknown {
		b.WriteString(" (the request reached Hiper: it may have taken effect)")
	}
	return b.String()
}

// Unwrap exposes the class and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 3)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.outcomeUnknown {
		errs = append(errs, ErrOutcomeUnknown)
	}
	return errs
}

func writeHiperText(b *strings.Builder, errs []string, message string) {
	if len(errs) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(errs, "; "))
	}
	if message != "" {
		fmt.Fprintf(b, " (message %q)", message)
	}
}

// RejectedError is Hiper refusing a request with its own reasons: a 400,
// 402, 403, 409 or 422 (or another 4xx with no class of its own), or a 200
// whose errors is not empty.
type RejectedError struct {
	Status  int
	Errors  []string
	Message string
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rejected by hiper with status %d", e.Status)
	writeHiperText(&b, e.Errors, e.Message)
	return b.String()
}

// Is makes errors.Is(err, ErrRejected) hold.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// RateLimitedError is a 429. RetryAfter is what Hiper's Retry-After header
// asked for, zero when it sent none.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("rate limited by hiper, retry after %s", e.RetryAfter)
	}
	return "rate limited by hiper"
}

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// IsTransient reports whether err is worth retrying later: a transient
// failure or a rate limit.
func IsTransient(err error) bool {
	return errors.Is(err, ErrTransient) || errors.Is(err, ErrRateLimited)
}

// RetryAfter returns the delay Hiper asked for in a Retry-After header (on a
// 429, or on a 5xx that sent one) and true; false when it named none.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.hasRetryAfter {
		return e.retryAfter, true
	}
	var rl *RateLimitedError
	if errors.As(err, &rl) && rl.RetryAfter > 0 {
		return rl.RetryAfter, true
	}
	return 0, false
}

// HonourRetryAfter returns d, or the delay Hiper asked for in err's
// Retry-After when that is longer.
func HonourRetryAfter(d time.Duration, err error) time.Duration {
	if ra, ok := RetryAfter(err); ok && ra > d {
		return ra
	}
	return d
}

// maxRetryAfter bounds a Retry-After so that a broken header cannot park a
// tenant for years or overflow a Duration.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date.
// A date is measured from the answer's Date header when there is one, so the
// two clocks' skew cancels out, else from now. A date in the past is zero.
func parseRetryAfter(value, date string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	secs, err := strconv.ParseUint(value, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && secs > uint64(maxRetryAfter/time.Second):
		return maxRetryAfter, true
	case err == nil:
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	if d, err := http.ParseTime(strings.TrimSpace(date)); err == nil {
		now = d
	}
	wait := at.Sub(now)
	switch {
	case wait < 0:
		wait = 0
	case wait > maxRetryAfter:
		wait = maxRetryAfter
	}
	return wait, true
}
