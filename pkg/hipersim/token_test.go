package hipersim_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
)

func TestTokenIssue(t *testing.T) {
	t.Parallel()
	clock := simtest.NewClock(epoch)
	srv := simtest.Start(t, hipersim.Config{Seed: hipersim.SeedEmpty, TokenTTL: 2 * time.Hour, Now: clock.Now})
	anon := &api{t: t, srv: srv}

	tests := []struct {
		name      string
		key       string
		wantOK    bool
		wantError string
	}{
		{name: "known key", key: hipersim.DemoKey, wantOK: true},
		{name: "unknown key", key: otherKey, wantError: "Chave de segurança inválida."},
		{name: "malformed key", key: "not-a-key", wantError: "Chave de segurança inválida."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ans hiper.TokenAnswer
			st := anon.call("GET", "/auth/gerar-token/"+tt.key, nil, &ans)
			if !tt.wantOK {
				if st != http.StatusBadRequest || ans.Token != "" || !hasError(ans.Errors, tt.wantError) {
					t.Fatalf("status %d, answer %+v: want 400, no token, error %q", st, ans, tt.wantError)
				}
				return
			}
			if st != http.StatusOK || ans.Token == "" || len(ans.Errors) != 0 || ans.SecurityKey != tt.key {
				t.Fatalf("status %d, answer %+v", st, ans)
			}
			claims := jwtClaims(t, ans.Token)
			if claims.Sid == "" || claims.Hash == "" {
				t.Errorf("claims %+v: want sid and hash", claims)
			}
			if claims.Iat != epoch.Unix() || claims.Nbf != epoch.Unix() || claims.Exp-claims.Iat != int64((2*time.Hour).Seconds()) {
				t.Errorf("claims %+v: want iat=nbf=%d and exp 2h later", claims, epoch.Unix())
			}
		})
	}
}

type claims struct {
	Sid, Hash     string
	Nbf, Iat, Exp int64
}

// jwtClaims decodes a JWT's claims without verifying it, as a client that
// refreshes before exp does.
func jwtClaims(t *testing.T, token string) claims {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || !strings.Contains(string(header), `"HS256"`) {
		t.Fatalf("token header %q: %v", header, err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("decode claims %s: %v", payload, err)
	}
	return c
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	clock := simtest.NewClock(epoch)
	a := start(t, hipersim.Config{TokenTTL: time.Hour, Now: clock.Now})
	const path = "/produtos/pontoDeSincronizacao?pontoDeSincronizacao=0"

	if st := a.call("GET", path, nil, nil); st != http.StatusOK {
		t.Fatalf("fresh token: status %d", st)
	}
	clock.Advance(time.Hour - time.Second)
	if st := a.call("GET", path, nil, nil); st != http.StatusOK {
		t.Fatalf("token a second before exp: status %d", st)
	}
	clock.Advance(time.Second)
	var ans hiper.Answer
	if st := a.call("GET", path, nil, &ans); st != http.StatusUnauthorized || len(ans.Errors) == 0 {
		t.Fatalf("expired token: status %d, errors %v; want 401 with errors", st, ans.Errors)
	}
	fresh := login(t, a.srv, a.key)
	if st := fresh.call("GET", path, nil, nil); st != http.StatusOK {
		t.Fatalf("new token: status %d", st)
	}
}

func TestExpireTokensNow(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{})
	const path = "/produtos/pontoDeSincronizacao?pontoDeSincronizacao=0"
	if st := a.control("PUT", "/_sim/faults", `{"expireTokensNow": true}`, nil); st != http.StatusOK {
		t.Fatalf("put faults: status %d", st)
	}
	var ans hiper.Answer
	if st := a.call("GET", path, nil, &ans); st != http.StatusUnauthorized || len(ans.Errors) == 0 {
		t.Fatalf("token issued before expireTokensNow: status %d, errors %v; want 401", st, ans.Errors)
	}
	var f hipersim.Faults
	a.control("GET", "/_sim/faults", nil, &f)
	if f.ExpireTokensNow {
		t.Error("expireTokensNow stays true; it must reset")
	}
	fresh := login(t, a.srv, a.key)
	if st := fresh.call("GET", path, nil, nil); st != http.StatusOK {
		t.Fatalf("token issued after expireTokensNow: status %d", st)
	}
}

func TestAPIRefusesWithoutValidToken(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{})
	endpoints := []struct{ method, path string }{
		{"GET", "/produtos/pontoDeSincronizacao?pontoDeSincronizacao=0"},
		{"GET", "/estoques/pontoDeSincronizacao?pontoDeSincronizacao=0&ProdutoId=" + testID(1)},
		{"POST", "/pedido-de-venda/"},
		{"GET", "/pedido-de-venda/eventos/" + testID(1)},
		{"PUT", "/pedido-de-venda/cancelar/" + testID(1)},
	}
	auths := map[string]string{
		"missing":       "",
		"garbage":       "Bearer garbage",
		"other scheme":  "Basic " + a.token,
		"tampered":      "Bearer " + a.token + "x",
		"bearer, empty": "Bearer ",
	}
	for _, ep := range endpoints {
		for name, auth := range auths {
			t.Run(ep.method+" "+ep.path+"/"+name, func(t *testing.T) {
				t.Parallel()
				req, _ := http.NewRequest(ep.method, a.srv.URL+ep.path, strings.NewReader(`{}`))
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var ans hiper.Answer
				if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusUnauthorized || len(ans.Errors) == 0 {
					t.Fatalf("status %d, errors %v; want 401 with errors", resp.StatusCode, ans.Errors)
				}
			})
		}
	}
}

func TestTokensBelongToTheirAccount(t *testing.T) {
	t.Parallel()
	srv := simtest.Start(t, hipersim.Config{Keys: []string{hipersim.DemoKey, otherKey}, Seed: hipersim.SeedEmpty})
	demo, other := login(t, srv, hipersim.DemoKey), login(t, srv, otherKey)
	if err := srv.Sim.UpsertProducts(hipersim.DemoKey, []hiper.Product{simpleProduct(1, "5")}); err != nil {
		t.Fatal(err)
	}
	id := demo.createOrder(validOrder(testID(1)))
	if st := other.call("GET", "/pedido-de-venda/eventos/"+id, nil, nil); st != http.StatusNotFound {
		t.Errorf("another account's order: status %d, want 404", st)
	}
	if st, _ := other.page(0); st != http.StatusBadRequest {
		t.Errorf("another account's empty feed: status %d, want 400 (nothing new)", st)
	}
	login(t, srv, otherKey)
	got := srv.Sim.Stats().TokensIssued
	if got[hipersim.DemoKey] != 1 || got[otherKey] != 2 {
		t.Errorf("tokens issued %v: want 1 for the demo key and 2 for the other", got)
	}
}

func TestOnTokenTellsEachTokenIssued(t *testing.T) {
	t.Parallel()
	clock := simtest.NewClock(epoch)
	var (
		mu   sync.Mutex
		told []hipersim.IssuedToken
	)
	srv := simtest.Start(t, hipersim.Config{Seed: hipersim.SeedEmpty, TokenTTL: time.Hour, Now: clock.Now,
		OnToken: func(it hipersim.IssuedToken) {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, it)
		}})
	anon := &api{t: t, srv: srv}

	var answered []string
	for range 2 {
		var ans hiper.TokenAnswer
		if st := anon.call("GET", "/auth/gerar-token/"+hipersim.DemoKey, nil, &ans); st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		answered = append(answered, ans.Token)
	}
	anon.call("GET", "/auth/gerar-token/"+otherKey, nil, nil) // refused: no token
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 2 {
		t.Fatalf("told of %d tokens, want the 2 issued: %+v", len(told), told)
	}
	for i, it := range told {
		if it.Key != hipersim.DemoKey || it.Token != answered[i] || !it.Expires.Equal(epoch.Add(time.Hour)) {
			t.Errorf("told %+v, want key %s, token %s, expiry %s", it, hipersim.DemoKey, answered[i], epoch.Add(time.Hour))
		}
	}
}
