package hipersim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// tokenTable is every token issued since the last ExpireTokensNow, with the
// secret that signed them. Expiring all tokens swaps in a new table, so
// nothing issued before can verify again.
type tokenTable struct {
	secret []byte
	grants sync.Map // token string → tokenGrant
	issued atomic.Int64
}

// tokenGrant is what a token stands for.
type tokenGrant struct {
	account *account
	expires time.Time
}

func newTokenTable() *tokenTable {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails
	return &tokenTable{secret: secret}
}

func (t *tokenTable) lookup(token string) (tokenGrant, bool) {
	g, ok := t.grants.Load(token)
	if !ok {
		return tokenGrant{}, false
	}
	return g.(tokenGrant), true
}

// prune drops expired grants, so a long run that issues many tokens keeps a
// bounded table.
func (t *tokenTable) prune(now time.Time) {
	t.grants.Range(func(k, v any) bool {
		if !now.Before(v.(tokenGrant).expires) {
			t.grants.Delete(k)
		}
		return true
	})
}

// jwtHeader is the encoded header of every token, {"alg":"HS256","typ":"JWT"},
// like Hiper's.
const jwtHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// jwtClaims are the claims Hiper's tokens carry.
type jwtClaims struct {
	SessionID string `json:"sid"`
	Hash      string `json:"hash"`
	NotBefore int64  `json:"nbf"`
	IssuedAt  int64  `json:"iat"`
	Expires   int64  `json:"exp"`
}

// issueToken signs a new token for a. Verification never needs the
// signature: every valid token is in the table.
func (s *Sim) issueToken(a *account) (string, error) {
	table := s.tokens.Load()
	now := s.now()
	expires := now.Add(s.cfg.TokenTTL)
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	claims, err := json.Marshal(jwtClaims{
		SessionID: a.id,
		Hash:      hex.EncodeToString(nonce[:]),
		NotBefore: now.Unix(),
		IssuedAt:  now.Unix(),
		Expires:   expires.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	signed := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(claims)
	mac := hmac.New(sha256.New, table.secret)
	mac.Write([]byte(signed))
	token := signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	table.grants.Store(token, tokenGrant{account: a, expires: expires})
	if table.issued.Add(1)%4096 == 0 {
		table.prune(now)
	}
	a.tokensIssued.Add(1)
	if s.cfg.OnToken != nil {
		s.cfg.OnToken(IssuedToken{Key: a.key, Token: token, Expires: expires})
	}
	return token, nil
}

// expireTokens invalidates every token issued so far.
func (s *Sim) expireTokens() { s.tokens.Store(newTokenTable()) }

// handleToken serves GET /auth/gerar-token/{chaveDeSeguranca}.
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request, _ *account) {
	key := r.PathValue("chaveDeSeguranca")
	a, err := s.account(key)
	if err != nil {
		// Hiper leaves the status of an invalid key undocumented; 400 with an
		// empty token is what hiper-sim answers.
		writeJSON(w, http.StatusBadRequest, hiper.TokenAnswer{
			SecurityKey: key,
			Answer:      hiper.Answer{Errors: []string{"Chave de segurança inválida."}},
		})
		return
	}
	token, err := s.issueToken(a)
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, "Erro interno do simulador: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, hiper.TokenAnswer{
		SecurityKey: key,
		Token:       token,
		Answer:      hiper.Answer{Errors: []string{}},
	})
}

// authenticate returns the account of the request's bearer token, or
// answers 401 and returns nil.
func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) *account {
	token, ok := bearer(r)
	if !ok {
		writeErrors(w, http.StatusUnauthorized, "Token de acesso não informado.")
		return nil
	}
	g, ok := s.tokens.Load().lookup(token)
	if !ok {
		writeErrors(w, http.StatusUnauthorized, "Token de acesso inválido.")
		return nil
	}
	if !s.now().Before(g.expires) {
		writeErrors(w, http.StatusUnauthorized, "Token de acesso expirado.")
		return nil
	}
	return g.account
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}
