package auth

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
)

// Config is how the console authenticates callers. At least one of
// APIKeys and OIDC is required unless Insecure.
type Config struct {
	// APIKeys is the key file's content (HIPERSYNC_API_KEYS_FILE): one key
	// a line, "sha256:<hex of the key's SHA-256> <role> <name>", where role
	// is operator or store:<tenant>. '#' starts a comment.
	APIKeys string
	// OIDCIssuer and OIDCAudience (the client id) accept ID tokens of that
	// issuer; RoleClaim (default hipersync_role) says operator or store,
	// TenantClaim (default hipersync_tenant) the store's tenant.
	OIDCIssuer   string
	OIDCAudience string
	RoleClaim    string
	TenantClaim  string
	// SessionKey signs browser sessions; random when empty (sessions then
	// end with the process, and replicas do not share them).
	SessionKey []byte
	// SessionTTL is how long a browser session lasts (default 12h).
	SessionTTL time.Duration
	// Insecure (HIPERSYNC_INSECURE=1, dev and tests only) makes every
	// caller without credentials an operator.
	Insecure bool
	// LoginLinksOnly lets an Authenticator with neither keys nor OIDC
	// start: its only way in is the one-time login links the process
	// prints (hipersync dev).
	LoginLinksOnly bool
}

// Authenticator checks credentials.
type Authenticator struct {
	keys        map[[32]byte]Principal
	verifier    *oidc.IDTokenVerifier
	roleClaim   string
	tenantClaim string
	sessionKey  []byte
	sessionTTL  time.Duration
	insecure    bool
	now         func() time.Time

	mu    sync.Mutex
	links map[string]oneTimeLink
}

type oneTimeLink struct {
	p     Principal
	until time.Time
}

// ErrNoAuth is a console configured with no way to authenticate.
var ErrNoAuth = errors.New("no authentication configured: set HIPERSYNC_API_KEYS_FILE and/or HIPERSYNC_OIDC_ISSUER (HIPERSYNC_INSECURE=1 only for dev and tests)")

// New builds an Authenticator; with an OIDC issuer it fetches the issuer's
// discovery document.
func New(ctx context.Context, c Config) (*Authenticator, error) {
	a := &Authenticator{keys: map[[32]byte]Principal{}, roleClaim: c.RoleClaim, tenantClaim: c.TenantClaim,
		sessionKey: c.SessionKey, sessionTTL: c.SessionTTL, insecure: c.Insecure, now: time.Now,
		links: map[string]oneTimeLink{}}
	if a.roleClaim == "" {
		a.roleClaim = "hipersync_role"
	}
	if a.tenantClaim == "" {
		a.tenantClaim = "hipersync_tenant"
	}
	if a.sessionTTL <= 0 {
		a.sessionTTL = 12 * time.Hour
	}
	if len(a.sessionKey) == 0 {
		a.sessionKey = make([]byte, 32)
		_, _ = rand.Read(a.sessionKey)
	}
	if err := a.loadKeys(c.APIKeys); err != nil {
		return nil, err
	}
	if c.OIDCIssuer != "" {
		if c.OIDCAudience == "" {
			return nil, errors.New("HIPERSYNC_OIDC_AUDIENCE: required with HIPERSYNC_OIDC_ISSUER (the client id tokens are issued for)")
		}
		provider, err := oidc.NewProvider(ctx, c.OIDCIssuer)
		if err != nil {
			return nil, fmt.Errorf("HIPERSYNC_OIDC_ISSUER: %w", err)
		}
		a.verifier = provider.Verifier(&oidc.Config{ClientID: c.OIDCAudience})
	}
	if len(a.keys) == 0 && a.verifier == nil && !a.insecure && !c.LoginLinksOnly {
		return nil, ErrNoAuth
	}
	return a, nil
}

// Insecure reports whether callers without credentials are let in.
func (a *Authenticator) Insecure() bool { return a.insecure }

func (a *Authenticator) loadKeys(text string) error {
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("API keys, line %d: want \"sha256:<hex> <role> <name>\"", n)
		}
		hexSum, ok := cutPrefix(f[0], "sha256:")
		sum, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(sum) != 32 {
			return fmt.Errorf("API keys, line %d: the hash must be sha256:<64 hex digits>", n)
		}
		role, tenant, err := ParseRole(f[1])
		if err != nil {
			return fmt.Errorf("API keys, line %d: %w", n, err)
		}
		a.keys[[32]byte(sum)] = Principal{Subject: f[2], Role: role, Tenant: tenant, Method: "api-key"}
	}
	return sc.Err()
}

// APIKeyPrefix starts every API key, so that a key is told from a JWT.
const APIKeyPrefix = "hsk_"

// NewAPIKey returns a fresh random API key and its line for the key file.
func NewAPIKey(role, name string) (key, line string, err error) {
	if _, _, err := ParseRole(role); err != nil {
		return "", "", err
	}
	if name == "" || strings.ContainsAny(name, " \t#") {
		return "", "", errors.New("the key's name must be one word")
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, HashLine(key, role, name), nil
}

// HashLine is the key file's line for key.
func HashLine(key, role, name string) string {
	sum := sha256.Sum256([]byte(key))
	return fmt.Sprintf("sha256:%s %s %s", hex.EncodeToString(sum[:]), role, name)
}

// Bearer authenticates an Authorization header's bearer credential: an API
// key or an OIDC ID token. An empty credential is an operator only when
// insecure.
func (a *Authenticator) Bearer(ctx context.Context, header string) (Principal, error) {
	cred, ok := cutPrefix(header, "Bearer ")
	cred = strings.TrimSpace(cred)
	if header == "" || cred == "" {
		if a.insecure {
			return Principal{Subject: "insecure-dev", Role: adminv1.Role_ROLE_OPERATOR, Method: "insecure"}, nil
		}
		return Principal{}, fmt.Errorf("%w: send Authorization: Bearer <API key or OIDC token>", ErrUnauthenticated)
	}
	if !ok {
		return Principal{}, fmt.Errorf("%w: want a Bearer credential", ErrUnauthenticated)
	}
	return a.Credential(ctx, cred)
}

// Credential authenticates an API key or an OIDC ID token.
func (a *Authenticator) Credential(ctx context.Context, cred string) (Principal, error) {
	if strings.HasPrefix(cred, APIKeyPrefix) || a.verifier == nil {
		sum := sha256.Sum256([]byte(cred))
		if p, ok := a.keys[sum]; ok {
			return p, nil
		}
		return Principal{}, fmt.Errorf("%w: unknown API key", ErrUnauthenticated)
	}
	tok, err := a.verifier.Verify(ctx, cred)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	p := Principal{Subject: tok.Subject, Method: "oidc"}
	if email, _ := claims["email"].(string); email != "" {
		p.Subject = email
	}
	role, _ := claims[a.roleClaim].(string)
	tenant, _ := claims[a.tenantClaim].(string)
	switch role {
	case "operator":
		p.Role = adminv1.Role_ROLE_OPERATOR
	case "store":
		if tenant == "" {
			return Principal{}, fmt.Errorf("%w: a store-role token needs the %s claim", ErrPermissionDenied, a.tenantClaim)
		}
		p.Role, p.Tenant = adminv1.Role_ROLE_STORE, tenant
	default:
		return Principal{}, fmt.Errorf("%w: the token's %s claim must be operator or store", ErrPermissionDenied, a.roleClaim)
	}
	return p, nil
}

// Session is a signed browser session: the principal and its end.
type session struct {
	P     Principal `json:"p"`
	Until int64     `json:"u"`
}

// NewSession returns a cookie value for p.
func (a *Authenticator) NewSession(p Principal) string {
	p.Method = "session"
	b, _ := json.Marshal(session{P: p, Until: a.now().Add(a.sessionTTL).Unix()})
	body := base64.RawURLEncoding.EncodeToString(b)
	return body + "." + a.sign(body)
}

// Session reads a cookie value NewSession made.
func (a *Authenticator) Session(v string) (Principal, error) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok || subtle.ConstantTimeCompare([]byte(sig), []byte(a.sign(body))) != 1 {
		return Principal{}, fmt.Errorf("%w: bad session", ErrUnauthenticated)
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: bad session", ErrUnauthenticated)
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil || a.now().Unix() > s.Until {
		return Principal{}, fmt.Errorf("%w: session expired", ErrUnauthenticated)
	}
	return s.P, nil
}

// CSRF is the form token of a session.
func (a *Authenticator) CSRF(sessionValue string) string { return a.sign("csrf:" + sessionValue)[:32] }

func (a *Authenticator) sign(s string) string {
	m := hmac.New(sha256.New, a.sessionKey)
	_, _ = io.WriteString(m, s)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// NewLoginLink returns a token that logs a browser in once as p, within ttl.
func (a *Authenticator) NewLoginLink(p Principal, ttl time.Duration) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.links[tok] = oneTimeLink{p: p, until: a.now().Add(ttl)}
	return tok
}

// UseLoginLink spends a login link's token.
func (a *Authenticator) UseLoginLink(tok string) (Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.links[tok]
	delete(a.links, tok)
	if !ok || a.now().After(l.until) {
		return Principal{}, fmt.Errorf("%w: the login link was used already or expired", ErrUnauthenticated)
	}
	return l.p, nil
}
