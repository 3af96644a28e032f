package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// seedStores writes n more stores into the registry and the pollers'
// status bucket, as a deployment of n stores has them.
func seedStores(b *testing.B, st *brokertest.Stack, n int) {
	b.Helper()
	ctx := context.Background()
	tenants, err := events.EnsureKV(ctx, st.JS, st.NS, tenant.Bucket)
	if err != nil {
		b.Fatal(err)
	}
	status, _, err := syncstatus.EnsureBuckets(ctx, st.JS, st.NS)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range n {
		id := fmt.Sprintf("loja-%04d", i)
		rec, _ := tenant.EncodeRecord(&brokerv1.TenantRecord{Tenant: &brokerv1.Tenant{TenantId: id,
			State: brokerv1.TenantState_TENANT_STATE_ACTIVE, StateChangedAt: timestamppb.New(now)}})
		if _, err := tenants.Put(ctx, id, rec); err != nil {
			b.Fatal(err)
		}
		for _, k := range []syncstatus.Kind{syncstatus.Catalog, syncstatus.Stock} {
			s, _ := json.Marshal(syncstatus.Status{Tenant: id, Kind: k, LastSuccessAt: now.Add(-time.Duration(i) * time.Second),
				LastRunAt: now, TargetInterval: syncstatus.Duration(5 * time.Minute), ItemsPublished: int64(i)})
			if _, err := status.Put(ctx, syncstatus.StatusKey(id, k), s); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// seedLogs writes a sync log event of each of n stores and more dead
// letters than a page shows.
func seedLogs(b *testing.B, st *brokertest.Stack, n int) {
	b.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("loja-%04d", i)
		if _, err := st.JS.PublishAsync(st.NS.HiperSubject(id, events.KindSyncCompleted), []byte(`{"tenant":"`+id+`"}`)); err != nil {
			b.Fatal(err)
		}
		if i%5 == 0 {
			if err := events.DeadLetterBody(ctx, st.JS, st.NS, events.Body{ID: id, Tenant: id, Consumer: "invoice-watcher",
				Code: "hiper_bad_answer", Cause: errors.New("bad answer"), Subject: "work"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-st.JS.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		b.Fatal("the sync log events were not stored within 30s")
	}
}

// BenchmarkWith2000Stores is the server time against a real NATS holding
// 2,000 stores: the overview's snapshot refresh (every status read, every
// 5 seconds at most), and a store's page (read by key).
func BenchmarkWith2000Stores(b *testing.B) {
	st := brokertest.Start(b, brokertest.Options{})
	seedStores(b, st, 2000)
	seedLogs(b, st, 2000)
	c := consoletest.Start(b, st, auth.Config{})
	ctx := auth.With(context.Background(), auth.Principal{Subject: "bench", Role: adminv1.Role_ROLE_OPERATOR})
	b.Run("overview-refresh", func(b *testing.B) {
		for b.Loop() {
			resp, err := c.Admin.GetStatus(ctx, &adminv1.GetStatusRequest{})
			if err != nil || len(resp.GetTenants()) < 2000 {
				b.Fatalf("GetStatus: %d tenants, %v", len(resp.GetTenants()), err)
			}
		}
	})
	sess := c.Auth.NewSession(auth.Principal{Subject: "bench", Role: adminv1.Role_ROLE_OPERATOR})
	// Every other page, each against the same 2,000 stores: the ones that
	// read by key, and the lists that read the newest page of a stream.
	for _, page := range []struct{ name, path string }{
		{"store-page", "/stores/acme"},
		{"order-page", "/stores/acme/orders/nothing"},
		{"log-page", "/log?since=24h"},
		{"dead-letters-page", "/dead-letters"},
		{"audit-page", "/audit"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, page.path, nil)
				req.AddCookie(&http.Cookie{Name: "hs_session", Value: sess})
				rw := &discard{h: http.Header{}}
				c.Handler.ServeHTTP(rw, req)
				if rw.code != 200 && !(page.name == "order-page" && rw.code == http.StatusNotFound) {
					b.Fatalf("%s: %d", page.path, rw.code)
				}
			}
		})
	}
}
