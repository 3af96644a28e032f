package cli

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func TestDevRunStartsAndKeepsTheDemoStore(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	_, natsPort, _ := net.SplitHostPort(brokertest.FreeAddr(t))
	sim, brokerAddr, httpAddr, consoleAddr := brokertest.FreeAddr(t), brokertest.FreeAddr(t), brokertest.FreeAddr(t), brokertest.FreeAddr(t)
	args := []string{"dev", "--data", data, "--nats-port", natsPort, "--sim-addr", sim, "--broker-addr", brokerAddr, "--http-addr", httpAddr,
		"--console-addr", consoleAddr}

	since := ""
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var out brokertest.SyncBuffer
		code := make(chan int, 1)
		go func() {
			code <- Run(ctx, Env{Stdout: &out, Stderr: &out, Getenv: config.Map(nil)}, args)
		}()
		// The dev run provisions NATS and connects the demo store before its
		// guide: seconds alone, more beside the package's parallel tests
		// under -race. A run that ends first says why.
		testkit.WaitFor(t, time.Minute, "the dev run to print its guide", func() bool {
			return strings.Contains(out.String(), "Ctrl-C stops everything") || len(code) > 0
		})
		if !strings.Contains(out.String(), "Ctrl-C stops everything") {
			t.Fatalf("round %d: dev exited %d before its guide:\n%s", round, <-code, out.String())
		}
		if !strings.Contains(out.String(), "http://"+consoleAddr+"/login/link?token=") {
			t.Fatalf("round %d: the guide has no login link to the console:\n%s", round, out.String())
		}
		auth := filepath.Join(data, "nats-auth")
		natsEnv := map[string]string{"NATS_URL": "nats://127.0.0.1:" + natsPort, "NATS_CREDS": filepath.Join(auth, "hipersync.creds"),
			"HIPERSYNC_NATS_SIGNING_KEY": filepath.Join(auth, "store-signing.nk")}
		r := runEnv(t, map[string]string{"TOKEN_BROKER_ADDR": brokerAddr, "NATS_URL": natsEnv["NATS_URL"], "NATS_CREDS": natsEnv["NATS_CREDS"]},
			"tenant", "show", "demo", "--json")
		var shown struct {
			State          string `json:"state"`
			StateChangedAt string `json:"stateChangedAt"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &shown) != nil || shown.State != "TENANT_STATE_ACTIVE" {
			t.Fatalf("round %d: demo store: %+v", round, r)
		}
		// The state's time (to the nanosecond) changes only if the store's
		// record was lost: a restart must find it in the data folder.
		if round == 2 && shown.StateChangedAt != since {
			t.Fatalf("the restart lost the demo store: connected at %s, then at %s", since, shown.StateChangedAt)
		}
		since = shown.StateChangedAt
		if round == 1 {
			// The demo order the guide points at goes through the services
			// the dev run started: catalog first (the order names a product
			// by barcode), then the order itself.
			testkit.WaitFor(t, 20*time.Second, "the demo catalog to be published", func() bool {
				return strings.Contains(runEnv(t, natsEnv, "events", "tail", "--kind", "catalog.>").stdout, "catalog.product.upserted")
			})
			// The store publishes with its own credentials, as the guide says,
			// minted by the dev run's console through the admin API.
			storeCreds := filepath.Join(t.TempDir(), "demo.creds")
			apiEnv := map[string]string{"HIPERSYNC_API": "http://" + consoleAddr, "HIPERSYNC_TOKEN": guideExport(t, out.String(), "HIPERSYNC_TOKEN")}
			if r = runEnv(t, apiEnv, "tenant", "credentials", "demo", "--out", storeCreds); r.code != 0 {
				t.Fatalf("mint the demo store's credentials through the dev console: %+v", r)
			}
			storeEnv := map[string]string{"NATS_URL": natsEnv["NATS_URL"], "NATS_CREDS": storeCreds, "NATS_INBOX_PREFIX": "_INBOX.demo"}
			r = runEnv(t, storeEnv, "publish", "store.demo.order.approved", "--file", filepath.Join(data, "demo-order.json"))
			if r.code != 0 {
				t.Fatalf("publish the demo order: %+v", r)
			}
			testkit.WaitFor(t, 20*time.Second, "the demo order to be accepted", func() bool {
				return strings.Contains(runEnv(t, natsEnv, "events", "tail", "--kind", "order.accepted").stdout, `"orderId":"1001"`)
			})
			// Revoked, the store's credentials no longer connect.
			revokeEnv := map[string]string{"HIPERSYNC_NATS_OPERATOR_KEY": filepath.Join(auth, "operator.nk"),
				"HIPERSYNC_NATS_SYSTEM_CREDS": filepath.Join(auth, "system.creds")}
			for k, v := range natsEnv {
				revokeEnv[k] = v
			}
			if r = runEnv(t, revokeEnv, "tenant", "credentials", "demo", "--revoke"); r.code != 0 {
				t.Fatalf("revoke the demo store's credentials: %+v", r)
			}
			if r = runEnv(t, storeEnv, "publish", "store.demo.order.approved", "--file", filepath.Join(data, "demo-order.json")); r.code == 0 ||
				!strings.Contains(strings.ToLower(r.stderr), "authorization violation") {
				t.Fatalf("a revoked store published: %+v", r)
			}
			// Hiper invoices it: the watcher the dev run started tells the store.
			var accepted struct {
				Event struct {
					HiperOrderID string `json:"hiperOrderId"`
				} `json:"event"`
			}
			r = runEnv(t, natsEnv, "events", "tail", "--kind", "order.accepted", "--json")
			if err := json.Unmarshal([]byte(strings.Split(r.stdout, "\n")[0]), &accepted); err != nil || accepted.Event.HiperOrderID == "" {
				t.Fatalf("order.accepted: %v %+v", err, r)
			}
			control := hipersim.NewControlClient("http://"+sim, nil)
			if err := control.AddOrderEvent(context.Background(), hipersim.DemoKey, accepted.Event.HiperOrderID,
				hiper.OrderEvent{Type: hiper.EventInvoiceIssued, Note: "NF 77"}); err != nil {
				t.Fatal(err)
			}
			if !testkit.Until(60*time.Second, func() bool {
				return strings.Contains(runEnv(t, natsEnv, "events", "tail", "--kind", "invoice.issued").stdout, `"number":"77"`)
			}) {
				t.Fatalf("the invoice did not reach the store in 60s; the log:\n%s\ndev output:\n%s", runEnv(t, natsEnv, "events", "tail").stdout, out.String())
			}
			// status shows the store active with its catalog and stock synced
			// just now, and the invoice-watcher's follow-up of its order.
			var views []ops.TenantStatus
			testkit.WaitFor(t, 15*time.Second, "status to show the invoice follow-up", func() bool {
				r = runEnv(t, natsEnv, "status", "--json")
				views = nil
				return r.code == 0 && json.Unmarshal([]byte(r.stdout), &views) == nil && len(views) == 1 &&
					views[0].Syncs["invoices"] != nil && views[0].Syncs["invoices"].LastSuccessAt != nil &&
					views[0].Syncs["invoices"].ItemsPublished >= 1
			})
			v := views[0]
			if v.Tenant != "demo" || v.State != "active" || v.Syncs["catalog"] == nil || v.Syncs["catalog"].LastSuccessAt == nil ||
				v.Syncs["catalog"].ItemsPublished == 0 || v.Syncs["stock"] == nil || v.Syncs["catalog"].Stale {
				t.Fatalf("status of the demo store: %+v", r.stdout)
			}
			if r = runEnv(t, natsEnv, "status"); r.code != 0 || !strings.Contains(r.stdout, "demo") || !strings.Contains(r.stdout, "ago /5m0s") {
				t.Fatalf("status: %+v", r)
			}
		}
		if r = runEnv(t, natsEnv, "events", "tail"); r.code != 0 {
			t.Fatalf("round %d: events tail against the embedded NATS: %+v", round, r)
		}
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Fatalf("round %d: dev exited %d: %s", round, c, out.String())
			}
		case <-time.After(time.Minute): // above the 30 s the run's NATS drain may take (service.DrainTimeout)
			t.Fatalf("round %d: dev did not stop on Ctrl-C", round)
		}
	}
}

// guideExport is the value the dev run's guide exports for name.
func guideExport(t *testing.T, guide, name string) string {
	t.Helper()
	for _, line := range strings.Split(guide, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "export "+name+"="); ok {
			return v
		}
	}
	t.Fatalf("the guide exports no %s:\n%s", name, guide)
	return ""
}
