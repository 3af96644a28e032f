package tenant

import "errors"

// Why a tenant cannot have a token or be changed. token-broker returns them
// as gRPC statuses carrying the Reason, and its clients turn them back into
// these errors, so callers on both sides branch with errors.Is.
var (
	ErrUnknown      = errors.New("tenant is not registered")
	ErrNotConnected = errors.New("tenant is not connected")
	ErrPaused       = errors.New("tenant is paused")
	// ErrKeyRefused: Hiper refused the tenant's stored key (revoked or
	// changed); the tenant is in state invalid_key until connected again.
	ErrKeyRefused = errors.New("hiper refused the tenant's security key")
	// ErrInvalidKey: a key offered to connect a tenant was refused.
	ErrInvalidKey = errors.New("security key refused")
	// ErrInvalid: a malformed tenant id or settings.
	ErrInvalid = errors.New("invalid request")
	// ErrHiperUnavailable: Hiper could not be reached to issue a token.
	ErrHiperUnavailable = errors.New("hiper unavailable")
)

var reasons = map[error]string{
	ErrUnknown:          "TENANT_NOT_FOUND",
	ErrNotConnected:     "TENANT_NOT_CONNECTED",
	ErrPaused:           "TENANT_PAUSED",
	ErrKeyRefused:       "KEY_REFUSED",
	ErrInvalidKey:       "INVALID_KEY",
	ErrInvalid:          "INVALID_ARGUMENT",
	ErrHiperUnavailable: "HIPER_UNAVAILABLE",
}

// ErrorDomain is the domain of the gRPC ErrorInfo carrying a Reason.
const ErrorDomain = "hipersync.dev"

// Reason returns the stable reason code of err's sentinel, or "".
func Reason(err error) string {
	for e, r := range reasons {
		if errors.Is(err, e) {
			return r
		}
	}
	return ""
}

// ErrorForReason returns the sentinel with that reason code, or nil.
func ErrorForReason(reason string) error {
	for e, r := range reasons {
		if r == reason {
			return e
		}
	}
	return nil
}
