package hiper

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// Token is a Hiper access token: a JWT valid until ExpiresAt (six hours
// after issue, per the API).
type Token struct {
	Value     string
	ExpiresAt time.Time
}

var epToken = &endpoint{
	op:       "get token",
	method:   http.MethodGet,
	name:     "GET /auth/gerar-token/{chaveDeSeguranca}",
	classify: classifyToken,
}

// classifyToken maps every way Hiper says "not this key" to ErrInvalidKey:
// the status of a bad key is not documented, so each plausible one is.
func classifyToken(status int, env envelope, body []byte) error {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return ErrInvalidKey
	}
	if status < 200 || status > 299 {
		return nil
	}
	if len(env.Errors) > 0 {
		return ErrInvalidKey
	}
	var t struct {
		Token *string `json:"token"`
	}
	if json.Unmarshal(body, &t) == nil && (t.Token == nil || strings.TrimSpace(*t.Token) == "") {
		return ErrInvalidKey
	}
	return nil
}

// Token exchanges a tenant's security key for an access token. A key of the
// wrong shape fails with ErrInvalidKey without a call.
func (c *Client) Token(ctx context.Context, securityKey string) (Token, error) {
	if err := checkKey(securityKey); err != nil {
		return Token{}, &Error{Op: epToken.op, Endpoint: epToken.name, Kind: ErrInvalidKey, Err: err}
	}
	req := request{ep: epToken, path: "/auth/gerar-token/" + redactedKey, key: securityKey}
	var out TokenAnswer
	status, err := c.call(ctx, req, &out)
	if err != nil {
		return Token{}, err
	}
	value := strings.TrimSpace(out.Token)
	exp, err := tokenExpiry(value)
	if err != nil {
		return Token{}, &Error{Op: epToken.op, Endpoint: epToken.name, Status: status, Kind: ErrBadResponse, Err: err}
	}
	return Token{Value: value, ExpiresAt: exp}, nil
}

// checkKey checks the shape of a security key: 64 hexadecimal characters.
// It never repeats the key, which is a secret even when malformed.
func checkKey(key string) error {
	if len(key) != 64 {
		return fmt.Errorf("want 64 hexadecimal characters, got %d characters", len(key))
	}
	for i := range len(key) {
		switch b := key[i]; {
		case b >= '0' && b <= '9', b >= 'a' && b <= 'f', b >= 'A' && b <= 'F':
		default:
			return fmt.Errorf("want 64 hexadecimal characters, got a non-hexadecimal one at %d", i)
		}
	}
	return nil
}

// tokenExpiry reads the exp claim of a JWT without verifying its signature:
// the token is Hiper's to check; hipersync only needs to know when to renew
// it.
func tokenExpiry(jwt string) (time.Time, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("read token expiry: token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, fmt.Errorf("read token expiry: decode claims: %w", err)
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, fmt.Errorf("read token expiry: decode claims: %w", err)
	}
	if claims.Exp == nil {
		return time.Time{}, errors.New("read token expiry: no exp claim")
	}
	// NumericDate may carry a fraction (RFC 7519 §2).
	secs, err := claims.Exp.Float64()
	if err != nil || math.IsNaN(secs) || secs <= 0 || secs > 1<<40 {
		return time.Time{}, fmt.Errorf("read token expiry: bad exp claim %q", claims.Exp.String())
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}
