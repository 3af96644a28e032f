package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// browser is an HTTP client with cookies, logged in with a key.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func login(t *testing.T, c *consoletest.Console, key string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := *c.HTTPClient()
	hc.Jar = jar
	b := &browser{t: t, c: &hc, base: c.Server.URL}
	resp, err := b.c.PostForm(b.base+"/login", url.Values{"key": {key}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if strings.Contains(resp.Request.URL.String(), "failed") {
		t.Fatalf("login with the key failed: %s", resp.Request.URL)
	}
	return b
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// csrf reads the form token of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	if !ok {
		t.Fatal("no form token on the page")
	}
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

func TestPagesOfAnOperatorAndOfAStore(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	c := consoletest.Start(t, st, auth.Config{})
	op := login(t, c, c.OperatorKey)

	for path, want := range map[string]string{
		"/":                           "acme",
		"/?q=bet":                     "beta",
		"/stores/acme":                "Sincronizar agora",
		"/log?tenant=acme&since=24h":  "Log de sincronização",
		"/dead-letters":               "Nenhuma mensagem com falha",
		"/audit":                      "Auditoria",
		"/stores/acme/orders/nothing": "not found",
	} {
		code, body := op.get(path)
		if !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, the page lacks %q:\n%s", path, code, want, body)
		}
	}
	if _, body := op.get("/?q=bet"); strings.Contains(body, `href="/stores/acme"`) {
		t.Error("the filter q=bet still lists acme")
	}

	// A form post changes the store, and the change is in the audit log.
	_, page := op.get("/stores/acme")
	resp, err := op.c.PostForm(op.base+"/stores/acme/settings", url.Values{"csrf": {csrf(t, page)},
		"default_brand": {"Marca Padrão"}, "update_title": {"true"}, "catalog_interval": {"10m"}, "payment_map": {"PIX=12\nCASH=1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Request.URL.RawQuery, "ok=") {
		t.Fatalf("saving settings: landed on %s", resp.Request.URL)
	}
	if _, page := op.get("/stores/acme"); !strings.Contains(page, `value="Marca Padrão"`) || !strings.Contains(page, `value="10m"`) {
		t.Fatal("the store page does not show the saved settings")
	}
	if _, page := op.get("/audit"); !strings.Contains(page, "UpdateTenantSettings") {
		t.Fatal("the audit page does not show the change")
	}
	// Without the form token, nothing happens.
	resp, err = op.c.PostForm(op.base+"/stores/acme/pause", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a post without the form token: %d", resp.StatusCode)
	}

	// A paused store says why, in Portuguese, with the reason's code.
	_, page = op.get("/stores/beta")
	resp, err = op.c.PostForm(op.base+"/stores/beta/pause", url.Values{"csrf": {csrf(t, page)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, page := op.get("/stores/beta"); !strings.Contains(page, "pausada por um operador") || !strings.Contains(page, "<code>paused_by_operator</code>") {
		t.Fatalf("the paused store's page does not say why:\n%s", page)
	}

	// English.
	resp, err = op.c.Get(op.base + "/lang?to=en&back=/stores/acme")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Sync now") || !strings.Contains(string(body), `lang="en"`) {
		t.Fatal("the English switch did not switch")
	}

	// A store's person sees its store only.
	store := login(t, c, c.StoreKeys["acme"])
	if code, body := store.get("/"); code != 200 || !strings.Contains(body, "Loja acme") {
		t.Fatalf("store home: %d", code)
	}
	// Refused, in Portuguese with the refusal's code, the English message
	// beside it.
	refusedInPortuguese := func(page string) bool {
		return strings.Contains(page, "Esta chave só dá acesso à sua própria loja") && strings.Contains(page, "<code>tenant_forbidden</code>") &&
			strings.Contains(page, "may not reach tenant &#34;beta&#34;")
	}
	if code, body := store.get("/stores/beta"); code != http.StatusForbidden || !refusedInPortuguese(body) {
		t.Fatalf("the acme store opened beta's page, or was not told why in Portuguese: %d\n%s", code, body)
	}
	_, page = store.get("/stores/acme")
	resp, err = store.c.PostForm(store.base+"/stores/beta/pause", url.Values{"csrf": {csrf(t, page)}})
	if err != nil {
		t.Fatal(err)
	}
	landed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Request.URL.RawQuery, "code=tenant_forbidden") || !refusedInPortuguese(string(landed)) {
		t.Fatalf("the acme store paused beta, or was not told why in Portuguese: %s\n%s", resp.Request.URL, landed)
	}
	// In English, the English message with the code.
	if _, body := store.get("/lang?to=en&back=/stores/beta"); !strings.Contains(body, "may not reach tenant &#34;beta&#34; <code>tenant_forbidden</code>") ||
		strings.Contains(body, "Esta chave") {
		t.Fatalf("beta's page in English does not give the English refusal with its code:\n%s", body)
	}
	store.get("/lang?to=pt&back=/")
	if code, body := store.get("/log?tenant=beta"); code != http.StatusForbidden {
		t.Fatalf("the acme store read beta's log: %d %s", code, body)
	}

	// Without a session, the login page.
	resp, err = c.HTTPClient().Get(c.Server.URL + "/stores/acme")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/login" {
		t.Fatalf("no session: landed on %s", resp.Request.URL)
	}
}

// A refused call on the audit page reads as errors do on the other pages:
// the refusal's Portuguese text and code, the English message in small
// print; in English, the message with the code.
func TestAuditPageShowsARefusalsTextAndCode(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Client(c.OperatorKey).PauseTenant(ctx, &adminv1.PauseTenantRequest{TenantId: "nosuch"}); err == nil {
		t.Fatal("PauseTenant(nosuch) was not refused")
	}
	op := login(t, c, c.OperatorKey)
	_, page := op.get("/audit")
	if !strings.Contains(page, "Loja não cadastrada.") || !strings.Contains(page, "<code>tenant_not_found</code>") ||
		!strings.Contains(page, `<small lang="en">not_found: token-broker: tenant is not registered: nosuch`) {
		t.Fatalf("the audit page does not show the refusal's Portuguese text, code and English message:\n%s", page)
	}
	if _, page := op.get("/lang?to=en&back=/audit"); !strings.Contains(page, "tenant is not registered: nosuch") ||
		!strings.Contains(page, "<code>tenant_not_found</code>") || strings.Contains(page, "Loja não cadastrada") {
		t.Fatalf("the audit page in English does not show the English message with its code:\n%s", page)
	}
}

// fakeStatuses are n stores with every sync, some late, held or in review.
func fakeStatuses(n int) []*adminv1.TenantStatus {
	now := time.Now()
	out := make([]*adminv1.TenantStatus, n)
	for i := range out {
		t := &adminv1.TenantStatus{TenantId: fmt.Sprintf("loja-%04d", i), State: "active", OrdersInReview: int32(i % 7 / 6), DeadLetters: int32(i % 11 / 10)}
		for _, k := range []string{"catalog", "stock", "invoices"} {
			t.Syncs = append(t.Syncs, &adminv1.SyncStatus{Kind: k, LastSuccessAt: timestamppb.New(now.Add(-time.Duration(i) * time.Second)),
				Lag: durationpb.New(time.Duration(i) * time.Second), TargetInterval: durationpb.New(5 * time.Minute), Stale: i%13 == 0})
		}
		out[i] = t
	}
	return out
}

// BenchmarkStoresPage is the server time of the stores overview with 2,000
// stores, sorted by catalog freshness and filtered to the troubled ones.
func BenchmarkStoresPage(b *testing.B) {
	st := brokertest.Start(b, brokertest.Options{})
	c := consoletest.Start(b, st, auth.Config{})
	sess := c.Auth.NewSession(auth.Principal{Subject: "bench", Role: adminv1.Role_ROLE_OPERATOR})
	h := c.Handler
	rows := fakeStatuses(2000)
	for _, q := range []string{"/", "/?sort=-catalog", "/?problems=1&sort=review&page=2"} {
		b.Run(strings.TrimPrefix(q, "/"), func(b *testing.B) {
			for b.Loop() {
				c.Web.SetOverview(rows, time.Now())
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, q, nil)
				req.AddCookie(&http.Cookie{Name: "hs_session", Value: sess})
				rw := &discard{h: http.Header{}}
				h.ServeHTTP(rw, req)
				if rw.code != 200 {
					b.Fatalf("%s: %d", q, rw.code)
				}
			}
		})
	}
}

type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }
