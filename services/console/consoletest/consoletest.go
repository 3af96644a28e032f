// Package consoletest starts a console against a brokertest stack for
// tests: the admin API and the web console on a loopback server, with an
// operator key and a store key per tenant.
package consoletest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/console"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// Console is a running console.
type Console struct {
	*console.Console
	Stack  *brokertest.Stack
	Server *httptest.Server
	// OperatorKey reaches every tenant; StoreKeys[t] only tenant t.
	OperatorKey string
	StoreKeys   map[string]string
}

// Start starts a console over st; extra configures authentication further
// (OIDC), and each of with changes the console's dependencies (a
// credentials issuer).
func Start(t testing.TB, st *brokertest.Stack, extra auth.Config, with ...func(*console.Deps)) *Console {
	t.Helper()
	c := &Console{Stack: st, StoreKeys: map[string]string{}}
	var lines []string
	key, line, err := auth.NewAPIKey("operator", "ops-test")
	if err != nil {
		t.Fatal(err)
	}
	c.OperatorKey, lines = key, append(lines, line)
	for id := range st.Keys {
		key, line, err := auth.NewAPIKey("store:"+id, id+"-backend")
		if err != nil {
			t.Fatal(err)
		}
		c.StoreKeys[id], lines = key, append(lines, line)
	}
	extra.APIKeys = strings.Join(lines, "\n")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := auth.New(ctx, extra)
	if err != nil {
		t.Fatal(err)
	}
	deps := console.Deps{JS: st.JS, NS: st.NS, Tenants: st.Broker.Tenants,
		Format: events.FormatProtobuf, Auth: a, Log: slog.New(slog.DiscardHandler)}
	for _, f := range with {
		f(&deps)
	}
	c.Console, err = console.New(ctx, deps)
	if err != nil {
		t.Fatal(err)
	}
	c.Server = httptest.NewUnstartedServer(c.Handler)
	c.Server.EnableHTTP2 = true
	c.Server.StartTLS()
	t.Cleanup(c.Server.Close)
	return c
}

// Client is an admin API client sending key as its bearer token.
func (c *Console) Client(key string, opts ...connect.ClientOption) adminv1connect.AdminServiceClient {
	opts = append(opts, connect.WithInterceptors(Bearer(key)))
	return adminv1connect.NewAdminServiceClient(c.Server.Client(), c.Server.URL, opts...)
}

// Bearer sets the Authorization header of every call.
func Bearer(token string) connect.Interceptor { return auth.BearerToken(token) }

// HTTPClient is the test server's client (it trusts the server's
// certificate).
func (c *Console) HTTPClient() *http.Client { return c.Server.Client() }

// PutOrder stores an order the order-forwarder would have, as the store
// sent it (approval), in the orders bucket of c's stack; its CreatedAt and
// UpdatedAt are now when unset.
func (c *Console) PutOrder(t testing.TB, rec *orders.Record, approval *eventsv1.StoreOrderApproved) {
	t.Helper()
	PutOrder(t, c.Stack, rec, approval)
}

// PutOrder is Console.PutOrder on a stack no console runs on (yet).
func PutOrder(t testing.TB, st *brokertest.Stack, rec *orders.Record, approval *eventsv1.StoreOrderApproved) {
	t.Helper()
	ctx := context.Background()
	store, err := orders.Open(ctx, st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt, rec.UpdatedAt = time.Now(), time.Now()
	}
	if err := rec.SetApproval(approval); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
}
