package web_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// More dead letters than a page holds: the page says how many there are and
// links the older ones, page after page, each letter once; a store's key
// pages through its own only.
func TestDeadLettersArePaged(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const acmeLetters, betaLetters = 230, 3
	for i := range acmeLetters + betaLetters {
		tenantID := "acme"
		if i%80 == 5 && i/80 < betaLetters {
			tenantID = "beta"
		}
		if err := events.DeadLetterBody(ctx, st.JS, st.NS, events.Body{ID: fmt.Sprintf("m%d", i), Tenant: tenantID,
			Consumer: "invoice-watcher", Code: "hiper_bad_answer", Cause: errors.New("bad answer"), Subject: "work"}); err != nil {
			t.Fatal(err)
		}
	}

	op := login(t, c, c.OperatorKey)
	seen := map[string]bool{}
	path, pages := "/dead-letters", 0
	for path != "" {
		pages++
		code, body := op.get(path)
		if code != 200 || !strings.Contains(body, fmt.Sprintf("%d mensagens com falha no total", acmeLetters+betaLetters)) {
			t.Fatalf("GET %s: %d, without the count:\n%s", path, code, body)
		}
		rows := strings.Count(body, `action="/dead-letters/`)
		if pages == 1 && rows != 200 {
			t.Fatalf("the first page shows %d letters; want 200", rows)
		}
		for _, part := range strings.Split(body, `action="/dead-letters/`)[1:] {
			id, _, _ := strings.Cut(part, "/")
			if seen[id] {
				t.Fatalf("letter %s on two pages", id)
			}
			seen[id] = true
		}
		path = ""
		if before, _, ok := strings.Cut(body, `" rel="next"`); ok {
			path = html.UnescapeString(before[strings.LastIndex(before, `href="`)+len(`href="`):])
		}
		if pages > 1 && !strings.Contains(body, "Mais recentes") {
			t.Errorf("page %d has no link back to the newest", pages)
		}
	}
	if pages != 2 || len(seen) != acmeLetters+betaLetters {
		t.Fatalf("%d pages showed %d letters; want 2 pages and %d", pages, len(seen), acmeLetters+betaLetters)
	}

	// Through the API, a store's key: its own letters, its own count.
	beta := c.Client(c.StoreKeys["beta"])
	resp, err := beta.ListDeadLetters(ctx, &adminv1.ListDeadLettersRequest{Limit: 2})
	if err != nil || resp.GetTotal() != betaLetters || len(resp.GetDeadLetters()) != 2 || resp.GetNextBeforeId() == 0 {
		t.Fatalf("beta's first page = %v, %v; want 2 of %d and a next page", resp, err, betaLetters)
	}
	if first, second := resp.GetDeadLetters()[0].GetId(), resp.GetDeadLetters()[1].GetId(); first >= second {
		t.Errorf("the page is not oldest first: %d, %d", first, second)
	}
	rest, err := beta.ListDeadLetters(ctx, &adminv1.ListDeadLettersRequest{Limit: 2, BeforeId: resp.GetNextBeforeId()})
	if err != nil || len(rest.GetDeadLetters()) != 1 || rest.GetNextBeforeId() != 0 || rest.GetDeadLetters()[0].GetTenantId() != "beta" {
		t.Fatalf("beta's second page = %v, %v; want its last letter and no more", rest, err)
	}
}
