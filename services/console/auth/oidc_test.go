package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/services/console/auth"
)

// issuer is an OIDC provider on loopback: discovery, JWKS, and ID tokens
// signed with its key.
type issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func startIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks", "authorization_endpoint": is.srv.URL + "/auth",
			"token_endpoint": is.srv.URL + "/token", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: is.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]any{"iss": is.srv.URL, "aud": "hipersync-console", "sub": "u-1",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		base[k] = v
	}
	payload, _ := json.Marshal(base)
	sig, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sig.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOIDCBearerTokens(t *testing.T) {
	is := startIssuer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := auth.New(ctx, auth.Config{OIDCIssuer: is.srv.URL, OIDCAudience: "hipersync-console"})
	if err != nil {
		t.Fatal(err)
	}

	p, err := a.Bearer(ctx, "Bearer "+is.token(t, map[string]any{"email": "ana@loja.example", "hipersync_role": "store", "hipersync_tenant": "acme"}))
	if err != nil || p.Role != adminv1.Role_ROLE_STORE || p.Tenant != "acme" || p.Subject != "ana@loja.example" || p.Method != "oidc" {
		t.Fatalf("store token: %+v, %v", p, err)
	}
	if !p.Allows("acme") || p.Allows("beta") {
		t.Fatalf("a store principal of acme: Allows(acme)=%v Allows(beta)=%v", p.Allows("acme"), p.Allows("beta"))
	}
	p, err = a.Bearer(ctx, "Bearer "+is.token(t, map[string]any{"hipersync_role": "operator"}))
	if err != nil || !p.Operator() || p.Subject != "u-1" {
		t.Fatalf("operator token: %+v, %v", p, err)
	}

	for name, claims := range map[string]map[string]any{
		"expired":          {"hipersync_role": "operator", "exp": time.Now().Add(-time.Minute).Unix()},
		"other audience":   {"hipersync_role": "operator", "aud": "another-app"},
		"other issuer":     {"hipersync_role": "operator", "iss": "https://elsewhere.example"},
		"no role":          {},
		"store, no tenant": {"hipersync_role": "store"},
	} {
		if _, err := a.Bearer(ctx, "Bearer "+is.token(t, claims)); err == nil {
			t.Errorf("%s: token accepted", name)
		}
	}

	// A token signed by another key is refused.
	other := &issuer{srv: is.srv}
	other.key, _ = rsa.GenerateKey(rand.Reader, 2048)
	if _, err := a.Bearer(ctx, "Bearer "+other.token(t, map[string]any{"hipersync_role": "operator"})); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("token of another key: %v; want ErrUnauthenticated", err)
	}
}

func TestAPIKeysSessionsAndLinks(t *testing.T) {
	ctx := context.Background()
	key, line, err := auth.NewAPIKey("store:acme", "acme-backend")
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(ctx, auth.Config{APIKeys: "# keys\n" + line + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Bearer(ctx, "Bearer "+key)
	if err != nil || p.Tenant != "acme" || p.Subject != "acme-backend" {
		t.Fatalf("api key: %+v, %v", p, err)
	}
	if _, err := a.Bearer(ctx, ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("no credentials: %v", err)
	}
	s := a.NewSession(p)
	got, err := a.Session(s)
	if err != nil || got.Tenant != "acme" {
		t.Fatalf("session: %+v, %v", got, err)
	}
	if _, err := a.Session(s[:len(s)-2] + "xx"); err == nil {
		t.Fatal("a tampered session was accepted")
	}
	tok := a.NewLoginLink(p, time.Minute)
	if _, err := a.UseLoginLink(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UseLoginLink(tok); err == nil {
		t.Fatal("a login link worked twice")
	}
	if _, err := auth.New(ctx, auth.Config{APIKeys: "sha256:abc operator x"}); err == nil {
		t.Fatal("a malformed key file was accepted")
	}
}
