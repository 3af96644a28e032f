package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hipersync/hipersync/cmd/hipersync/cli"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// guide is what `hipersync dev --json` prints once everything runs.
type guide struct {
	Console  string            `json:"console"`
	LoginURL string            `json:"login_url"`
	Data     string            `json:"data"`
	SimCtl   string            `json:"hiper_sim_control"`
	Env      map[string]string `json:"env"`
}

// startDev runs `hipersync dev` on free ports until the test ends.
func startDev(t *testing.T) guide {
	t.Helper()
	_, natsPort, _ := net.SplitHostPort(brokertest.FreeAddr(t))
	args := []string{"dev", "--json", "--data", t.TempDir(), "--nats-port", natsPort, "--sim-addr", brokertest.FreeAddr(t),
		"--broker-addr", brokertest.FreeAddr(t), "--http-addr", brokertest.FreeAddr(t), "--console-addr", brokertest.FreeAddr(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var out brokertest.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, cli.Env{Stdout: &out, Stderr: &out, Getenv: config.Map(nil)}, args) }()
	// A minute: above the 30 s the dev run's NATS drain may take (service.DrainTimeout).
	t.Cleanup(func() { cancel(); testkit.Recv(t, done, time.Minute, "the CLI to stop") })
	var g guide
	deadline := time.Now().Add(60 * time.Second)
	for json.Unmarshal([]byte(out.String()), &g) != nil || g.LoginURL == "" {
		select {
		case code := <-done:
			t.Fatalf("hipersync dev exited %d:\n%s", code, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("hipersync dev did not print its guide:\n%s", out.String())
		}
	}
	return g
}

// publish publishes body as the demo store's plain NATS client would.
func publish(t *testing.T, g guide, body []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env := cli.Env{Stdout: &out, Stderr: &out, Getenv: config.Map(g.Env)}
	if code := cli.Run(context.Background(), env, []string{"publish", "store.demo.order.approved", "--file", f}); code != 0 {
		t.Fatalf("publish: %d %s", code, out.String())
	}
}

// demoOrder is the dev run's demo order with another order id.
func demoOrder(t *testing.T, g guide, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.Data, "demo-order.json"))
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	o["orderId"] = id
	b, _ = json.Marshal(o)
	return b
}

// chromium is Debian's Chromium, or the test is skipped.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: `apt-get install chromium` (.ci/run does) to run the console's browser test")
	return ""
}

// screenshots is bin/screenshots at the repository's root.
func screenshots(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "bin", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail(what, err)
	}
}

func (p *page) fail(what string, err error) {
	p.t.Helper()
	loc, _ := chromedp.Run(p.ctx, chromedp.Location())
	p.shot("failure")
	p.t.Fatalf("%s: %v (at %s)", what, err, loc)
}

// eval evaluates a JavaScript expression on the page.
func eval[T any](p *page, what, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail(what, err)
	}
	return v
}

// until reloads path until the JavaScript condition holds on it.
func (p *page) until(what, path, cond string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.run("open "+path, chromedp.Navigate(p.base+path), chromedp.WaitReady(chromedp.CSS("body")))
		if eval[bool](p, "check "+path, cond) {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS("main")))
			p.shot("failure")
			p.t.Fatalf("%s: %s did not come within %s; the page says:\n%s", what, cond, timeout, text)
		}
		p.run("wait", chromedp.Sleep(300*time.Millisecond))
	}
}

// flash waits for the page's confirmation that says text: the page after
// a form's redirect, not the one before it.
func flash(text string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//p[contains(@class,"flash") and contains(@class,"ok") and contains(., %q)]`, text)))
}

func (p *page) shot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(p.dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.fail("read "+sel, err)
	}
	return s
}

// tabUntil presses Tab until the element whose id is last has the focus,
// at most max times, and returns what had the focus after each press: an
// element's id, else "link <href> <text>", else "<tag> <text>". It fails on an element
// focused but not visible, and on one focused twice (the focus cycled
// without reaching last).
func (p *page) tabUntil(last string, max int) []string {
	p.t.Helper()
	var order []string
	for range max {
		p.run("press Tab", chromedp.KeyEvent("\t"))
		name := eval[string](p, "the focused element", `(() => {
			const e = document.activeElement;
			if (!e || e === document.body) return "";
			const r = e.getBoundingClientRect();
			const shown = r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
			const text = e.textContent.trim().replace(/\s+/g, " ");
			const name = e.id || (e.tagName === "A" ? "link " + e.getAttribute("href") : e.tagName.toLowerCase()) + " " + text;
			return (shown ? "" : "hidden:") + (e.classList.contains("skip") ? "skip" : name);
		})()`)
		if strings.HasPrefix(name, "hidden:") {
			p.t.Fatalf("Tab focused %s, which is not visible; the order so far: %v", strings.TrimPrefix(name, "hidden:"), order)
		}
		for _, seen := range order {
			if seen == name && name != "" && !strings.HasPrefix(name, "link /stores/demo/orders/") {
				p.t.Fatalf("Tab came back to %s before reaching %s: %v", name, last, order)
			}
		}
		order = append(order, name)
		if name == last {
			return order
		}
	}
	p.t.Fatalf("%d Tabs did not reach %s: %v", max, last, order)
	return nil
}

// accessKey completes an NF-e access key's 43 digits with its check digit
// (modulo 11, weights 2 to 9 from the right).
func accessKey(digits string) string {
	sum, w := 0, 2
	for i := len(digits) - 1; i >= 0; i-- {
		sum += int(digits[i]-'0') * w
		if w++; w > 9 {
			w = 2
		}
	}
	dv := 11 - sum%11
	if dv >= 10 {
		dv = 0
	}
	return digits + fmt.Sprint(dv)
}

// The console in a real browser, against the dev run: log in, the demo
// store's catalog synced, a setting changed, "Sincronizar agora", an order
// followed to accepted with its invoice and tracking, an order in review
// resolved, a dead letter retried, the audit log; a screenshot of each page.
func TestConsoleInABrowser(t *testing.T) {
	exe := chromium(t)
	g := startDev(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first run starts the browser, for as long as ctx lives: it must
	// have no timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	p := &page{t: t, ctx: ctx, base: g.Console, dir: screenshots(t)}
	sim := hipersim.NewControlClient(strings.TrimSuffix(g.SimCtl, "/_sim"), nil)

	// Log in with the one-time link: the stores overview.
	p.run("log in", chromedp.Navigate(g.LoginURL), chromedp.WaitVisible(chromedp.CSS(`a[href="/stores/demo"]`)))
	p.until("the demo store's catalog on the overview", "/",
		`[...document.querySelectorAll("tbody tr")].some(r => r.textContent.includes("demo") && r.querySelector("td.fresh.ok"))`, 60*time.Second)
	p.shot("stores")

	// The demo store: its catalog synced.
	p.until("the catalog synced", "/stores/demo",
		`(() => { const d = document.querySelector('dd[data-kind="catalog"]'); return !!d && d.classList.contains("ok") && /itens/.test(d.textContent) })()`, 60*time.Second)

	// A setting changed through the form.
	p.run("change the default brand",
		chromedp.SetValue(chromedp.ID("default_brand"), "Marca Demo"),
		chromedp.Click(chromedp.ID("update_title-yes")),
		chromedp.Click(chromedp.ID("save-settings")),
		flash("Configurações salvas"))
	brand := eval[string](p, "read the saved brand", `document.getElementById("default_brand").value`)
	if brand != "Marca Demo" {
		t.Fatalf("after saving: brand %q", brand)
	}

	// "Sincronizar agora".
	p.run("sync now", chromedp.Click(chromedp.ID("sync-now")), flash("Sincronização pedida"))
	p.shot("store")

	// The keyboard alone: Tab from the top reaches the skip link first,
	// then the navigation, then the store's controls in reading order, each
	// visible when focused, none twice on the way.
	p.run("reload the store page", chromedp.Navigate(p.base+"/stores/demo"), chromedp.WaitVisible(chromedp.ID("sync-now")))
	order := p.tabUntil("save-settings", 80)
	t.Logf("Tab order on the store page: %v", order)
	at := func(name string) int {
		for i, n := range order {
			if n == name || strings.HasPrefix(n, name+" ") {
				return i
			}
		}
		t.Fatalf("Tab never reached %s; the order was %v", name, order)
		return -1
	}
	if order[0] != "skip" {
		t.Errorf("the first Tab lands on %s, not the skip link; the order was %v", order[0], order)
	}
	steps := []string{"skip", "link /", "link /log", "sync-now", "full", "oq", "ostate", "default_category", "default_brand",
		"catalog_interval", "stock_interval", "payment_map", "currency_quotes", "save-settings"}
	for i := 1; i < len(steps); i++ {
		if at(steps[i-1]) >= at(steps[i]) {
			t.Errorf("Tab reaches %s before %s; the order was %v", steps[i], steps[i-1], order)
		}
	}
	// The skip link skips the navigation: Enter on it, and the next Tab is
	// the page's first control.
	p.run("skip the navigation", chromedp.Navigate(p.base+"/stores/demo"), chromedp.WaitVisible(chromedp.ID("sync-now")),
		chromedp.KeyEvent("\t"), chromedp.KeyEvent("\r"), chromedp.KeyEvent("\t"))
	if got := eval[string](p, "the focus after the skip link", `document.activeElement.id`); got != "sync-now" {
		t.Errorf("after the skip link, Tab lands on %q, not the sync button", got)
	}

	// The sync log, live: the order's events arrive without a reload.
	p.run("open the live log", chromedp.Navigate(p.base+"/log?tenant=demo&kind=order.%3E"), chromedp.WaitVisible(chromedp.ID("log")))
	if !eval[bool](p, "the live stream", `!!window.EventSource && document.querySelector("#log").dataset.stream.length > 0`) {
		t.Fatal("the log page has no live stream")
	}
	publish(t, g, demoOrder(t, g, "1001"))
	p.run("see order.accepted arrive live",
		chromedp.WaitVisible(chromedp.Search(`//table[@id="log"]//code[text()="order.accepted"]`)))
	p.shot("log")

	// The order's timeline: accepted, then invoiced and shipped in Hiper.
	p.until("order 1001 accepted", "/stores/demo/orders/1001",
		`(document.querySelector("#order-state") || {classList: {contains: () => false}}).classList.contains("o-accepted")`, 60*time.Second)
	hiperID := p.text("#hiper-id")
	key := accessKey("42" + "2512" + "12345678000195" + "55" + "001" + "000001234" + "1" + "00001234")
	ctxSim, cancelSim := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelSim()
	for _, ev := range []hiper.OrderEvent{
		{Type: hiper.EventInvoiceIssued, Note: "NF-e emitida", FiscalKey: key, FiscalType: "NFe"},
		{Type: hiper.EventShipped, Note: "Código de rastreio: AA123456789BR"},
	} {
		if err := sim.AddOrderEvent(ctxSim, hipersim.DemoKey, hiperID, ev); err != nil {
			t.Fatal(err)
		}
	}
	p.until("the invoice and the tracking code in the timeline", "/stores/demo/orders/1001",
		`!!document.querySelector('li[data-step="invoice.issued"]') && !!document.querySelector('li[data-step="order.shipped"]')`, 60*time.Second)
	if got := p.text("#invoice"); !strings.Contains(got, "1234") {
		t.Errorf("the invoice number shown is %q; want 1234", got)
	}
	for _, want := range []string{"Loja enviou o pedido aprovado", "Hiper aceitou o pedido", "Nota fiscal emitida", "Pedido despachado"} {
		if !strings.Contains(p.text("#timeline"), want) {
			t.Errorf("the timeline lacks %q:\n%s", want, p.text("#timeline"))
		}
	}
	p.shot("order")

	// An order whose answer Hiper lost: needs review, resolved with its id.
	if err := sim.SetFaults(ctxSim, hipersim.Faults{FailAfterCommitRate: 1, Endpoints: []string{hipersim.EndpointCreateOrder}}); err != nil {
		t.Fatal(err)
	}
	publish(t, g, demoOrder(t, g, "1002"))
	p.until("order 1002 in review", "/stores/demo/orders/1002",
		`(document.querySelector("#order-state") || {classList: {contains: () => false}}).classList.contains("o-needs_review")`, 90*time.Second)
	if err := sim.SetFaults(ctxSim, hipersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	p.shot("order-review")
	inHiper, err := sim.Orders(ctxSim, hipersim.DemoKey)
	if err != nil {
		t.Fatal(err)
	}
	var id1002 string
	for _, o := range inHiper {
		if o.Body.StoreOrderID == "1002" || o.ID != hiperID && id1002 == "" {
			id1002 = o.ID
		}
	}
	p.run("resolve with the Hiper id",
		chromedp.SetValue(chromedp.ID("hiper_order_id"), id1002),
		chromedp.Click(chromedp.ID("resolve")),
		flash("Pedido resolvido"))
	if got := p.text("#hiper-id"); got != id1002 {
		t.Fatalf("after resolving: Hiper id %q, want %q", got, id1002)
	}

	// A message no one can read is dead-lettered; retried from the console.
	publish(t, g, []byte(`{"orderId": {"not": "a string"}}`))
	p.until("the dead letter", "/dead-letters", `!!document.querySelector("#dlq tbody tr")`, 60*time.Second)
	p.shot("dead-letters")
	p.run("retry it", chromedp.Click(chromedp.CSS(`#dlq tbody tr button`)), flash("reenviada"))

	// The audit log has each change, by whom.
	p.run("open the audit log", chromedp.Navigate(p.base+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	audit := p.text("#audit")
	for _, want := range []string{"UpdateTenantSettings", "SyncNow", "ResolveOrder", "RetryDeadLetter", "dev-operator"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
	p.shot("audit")

	// In English, and on a phone.
	p.run("switch to English", chromedp.Click(chromedp.CSS(`a[lang="en"]`)), chromedp.WaitVisible(chromedp.ID("audit")))
	if h := p.text("h1"); h != "Audit log" {
		t.Fatalf("in English the audit page is titled %q", h)
	}
	p.run("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(p.base+"/stores/demo"), chromedp.WaitVisible(chromedp.ID("sync-now")))
	if eval[bool](p, "sideways scrolling", `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("the store page scrolls sideways on a phone")
	}
	p.shot("store-phone")
	fmt.Fprintln(os.Stderr, "screenshots in", p.dir)
}
