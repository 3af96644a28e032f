// Package auth says who calls the admin API and what they may reach:
// static API keys (kept hashed, from a Secret or file) for machines, OIDC
// bearer tokens from any standard issuer for people, browser sessions of
// the web console, and one-time login links. A caller is a Principal with a
// role: operator (every tenant) or store (one tenant).
package auth

import (
	"context"
	"errors"
	"fmt"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
)

// Principal is an authenticated caller.
type Principal struct {
	// Subject is the API key's name or the token's subject (its e-mail
	// when it has one).
	Subject string       `json:"sub"`
	Role    adminv1.Role `json:"role"`
	// Tenant is the one tenant a store-role caller reaches.
	Tenant string `json:"tenant,omitempty"`
	// Method is how the caller authenticated: api-key, oidc, session.
	Method string `json:"method"`
}

// ErrUnauthenticated is a call without valid credentials.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrPermissionDenied is a call beyond the caller's role.
var ErrPermissionDenied = errors.New("permission denied")

// ErrOtherTenant is a store-role caller reaching a tenant not its own. It
// is an ErrPermissionDenied and reads the same, so messages do not change.
var ErrOtherTenant = fmt.Errorf("%w", ErrPermissionDenied)

// Operator reports whether p reaches every tenant.
func (p Principal) Operator() bool { return p.Role == adminv1.Role_ROLE_OPERATOR }

// Allows reports whether p may read and change tenant.
func (p Principal) Allows(tenant string) bool {
	switch p.Role {
	case adminv1.Role_ROLE_OPERATOR:
		return true
	case adminv1.Role_ROLE_STORE:
		return tenant != "" && tenant == p.Tenant
	}
	return false
}

// Scope checks that p may reach tenant; for a store-role caller an empty
// tenant (every tenant) becomes its own.
func (p Principal) Scope(tenant string) (string, error) {
	if tenant == "" && p.Role == adminv1.Role_ROLE_STORE {
		return p.Tenant, nil
	}
	if tenant == "" && p.Operator() {
		return "", nil
	}
	if !p.Allows(tenant) {
		return "", fmt.Errorf("%w: %s may not reach tenant %q", ErrOtherTenant, p.Subject, tenant)
	}
	return tenant, nil
}

// RoleName is the role as configuration and the console write it.
func RoleName(r adminv1.Role) string {
	switch r {
	case adminv1.Role_ROLE_OPERATOR:
		return "operator"
	case adminv1.Role_ROLE_STORE:
		return "store"
	}
	return "none"
}

// ParseRole reads "operator" or "store:<tenant>".
func ParseRole(s string) (adminv1.Role, string, error) {
	if s == "operator" {
		return adminv1.Role_ROLE_OPERATOR, "", nil
	}
	if t, ok := cutPrefix(s, "store:"); ok && t != "" {
		return adminv1.Role_ROLE_STORE, t, nil
	}
	return adminv1.Role_ROLE_UNSPECIFIED, "", fmt.Errorf("role %q: want operator or store:<tenant>", s)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

type ctxKey struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal ctx carries.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
