package cli

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func TestEventsTailAndDeadLetters(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := st.Env()
	cli := func(args ...string) result {
		t.Helper()
		return runEnv(t, env, args...)
	}

	pub := events.NewPublisher(st.JS, st.NS, "hipersync/test", events.FormatProtobuf)
	publish := func(subject, id string, m proto.Message) {
		t.Helper()
		if _, err := pub.Publish(ctx, subject, id, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(st.NS.StoreSubject("acme", events.KindOrderApproved), "s1", &eventsv1.StoreOrderApproved{
		OrderId:  "1001",
		Customer: &eventsv1.Customer{Document: "52998224725", Email: "ana@example.com"},
		Items:    []*eventsv1.OrderItem{{Ean: "7891234567895", Quantity: "1", UnitPrice: "10.00"}},
	})
	publish(st.NS.HiperSubject("acme", events.KindOrderAccepted), "h1", &eventsv1.OrderAccepted{OrderId: "1001", HiperOrderId: "h-1"})
	publish(st.NS.HiperSubject("acme", events.KindStockChanged), "h2", &eventsv1.StockChanged{ProductId: "p-1", Quantity: "3"})
	publish(st.NS.HiperSubject("beta", events.KindOrderAccepted), "h3", &eventsv1.OrderAccepted{OrderId: "2002", HiperOrderId: "h-2"})

	r := cli("events", "tail", "--tenant", "acme")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stdout, "store.order.approved") ||
		!strings.Contains(r.stdout, `"hiperOrderId":"h-1"`) || strings.Contains(r.stdout, "beta") {
		t.Fatalf("tail --tenant acme: %+v", r)
	}
	if strings.Contains(r.stdout, "52998224725") || strings.Contains(r.stdout, "ana@example.com") {
		t.Fatalf("the text sync log shows customer data: %s", r.stdout)
	}
	// As JSON the event is whole, but for the CPF/CNPJ, masked.
	r = cli("events", "tail", "--tenant", "acme", "--source", "store", "--json")
	if r.code != 0 || strings.Contains(r.stdout, "52998224725") || !strings.Contains(r.stdout, "*********25") {
		t.Fatalf("the JSON sync log shows a full CPF: %+v", r)
	}
	r = cli("events", "tail", "--kind", "order.>", "--source", "hiper", "--json")
	var lines []ops.LogLine
	for _, raw := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var l ops.LogLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("tail --json line %q: %v", raw, err)
		}
		lines = append(lines, l)
	}
	if r.code != 0 || len(lines) != 2 || lines[0].Kind != "order.accepted" || lines[1].Tenant != "beta" || lines[0].ID != "h1" {
		t.Fatalf("tail --kind order.> --json: %+v", r)
	}
	if r := cli("events", "tail", "--since", "1ms", "--source", "hiper", "--tenant", "nobody"); r.code != 0 || !strings.Contains(r.stdout, "no events since") {
		t.Fatalf("tail with nothing to show: %+v", r)
	}

	// A poison message goes through the real consumer loop to the dead
	// letters; dlq lists it with its reason and replays it.
	poison := st.NS.HiperSubject("acme", events.KindStockChanged)
	if _, err := st.JS.Publish(ctx, poison, []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	handled := make(chan string, 10)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- events.Consume(cctx, st.JS, st.NS, events.ConsumerConfig{
			Stream: events.StreamHiper, Name: "test-stock", FilterSubjects: []string{poison}, AckWait: 5 * time.Second, MaxDeliver: 3,
		}, func(ctx context.Context, m *events.Message) error {
			var sc eventsv1.StockChanged
			if err := m.Decode(&sc); err != nil {
				return err
			}
			handled <- sc.GetProductId()
			return nil
		})
	}()
	testkit.WaitFor(t, 10*time.Second, "the poison message to be dead-lettered", func() bool {
		return strings.Contains(cli("dlq", "list").stdout, "malformed_payload")
	})
	r = cli("dlq", "list", "--json")
	var list deadLetterList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.DeadLetters) != 1 || list.More != 0 {
		t.Fatalf("dlq list --json: %v %+v", err, r)
	}
	letters := list.DeadLetters
	if l := letters[0]; l.Tenant != "acme" || l.Consumer != "test-stock" || l.Subject != poison || l.BodyBytes != len("not an event") {
		t.Fatalf("dead letter: %+v", l)
	}
	if r := cli("dlq", "retry", "999999"); r.code != 1 || !strings.Contains(r.stderr, "no dead letter 999999") {
		t.Fatalf("retry of an unknown id: %+v", r)
	}
	if r := cli("dlq", "retry", "x"); r.code != 2 {
		t.Fatalf("retry of a bad id: %+v", r)
	}
	if r := cli("dlq", "retry", jsonNumber(letters[0].ID)); r.code != 0 || !strings.Contains(r.stdout, "replayed") {
		t.Fatalf("retry: %+v", r)
	}
	// Replayed, still poison: it comes back as a new dead letter, and the
	// first record is gone.
	var again deadLetterList
	testkit.WaitFor(t, 10*time.Second, "the replayed message to be dead-lettered again", func() bool {
		_ = json.Unmarshal([]byte(cli("dlq", "list", "--json").stdout), &again)
		return len(again.DeadLetters) == 1 && again.DeadLetters[0].ID != letters[0].ID
	})
	// Another one: the list shows the newest first, and says how many
	// older ones its limit leaves out.
	if _, err := st.JS.Publish(ctx, poison, []byte("still not an event")); err != nil {
		t.Fatal(err)
	}
	var two deadLetterList
	testkit.WaitFor(t, 10*time.Second, "a second dead letter", func() bool {
		_ = json.Unmarshal([]byte(cli("dlq", "list", "--json").stdout), &two)
		return len(two.DeadLetters) == 2
	})
	if two.DeadLetters[0].ID <= two.DeadLetters[1].ID || two.DeadLetters[1].ID != again.DeadLetters[0].ID {
		t.Fatalf("dlq list, not newest first: %+v", two)
	}
	var one deadLetterList
	if err := json.Unmarshal([]byte(cli("dlq", "list", "--limit", "1", "--json").stdout), &one); err != nil ||
		len(one.DeadLetters) != 1 || one.DeadLetters[0].ID != two.DeadLetters[0].ID || one.More != 1 {
		t.Fatalf("dlq list --limit 1 --json: %+v, %v", one, err)
	}
	if r := cli("dlq", "list", "--limit", "1"); !strings.Contains(r.stdout, "older dead letters not shown: 1") {
		t.Fatalf("dlq list --limit 1 does not say more exist: %+v", r)
	}
	stop()
	if err := testkit.Recv(t, done, 30*time.Second, "the consumer to stop"); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if len(handled) != 1 { // the good stock event only
		t.Fatalf("handled %d good events, want 1", len(handled))
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// throughConsole is the environment of a CLI that calls console c's API
// with a key (HIPERSYNC_API, its CA, HIPERSYNC_TOKEN).
func throughConsole(t *testing.T, c *consoletest.Console) func(token string) map[string]string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "console-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(token string) map[string]string {
		return map[string]string{"HIPERSYNC_API": c.Server.URL, "HIPERSYNC_TOKEN": token, "HIPERSYNC_API_CA": ca}
	}
}

// A store's approval in the sync log names no customer unless an operator
// asks with --reveal: in text and JSON, read and followed, in this process
// and through a console, with an operator's key or the store's own.
func TestEventsTailMasksTheCustomer(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := &eventsv1.Address{Street: "Rua Augusta", Number: "1500", Complement: "Apto 12", District: "Consolação",
		PostalCode: "01310-100", IbgeCityCode: "3550308"}
	approval := func(id string) *eventsv1.StoreOrderApproved {
		return &eventsv1.StoreOrderApproved{OrderId: id,
			Customer:       &eventsv1.Customer{Document: "52998224725", Email: "joana.silva@example.com", Name: "Joana da Silva"},
			BillingAddress: addr, ShippingAddress: addr, Notes: "ligar para (11) 98765-4321",
			Items: []*eventsv1.OrderItem{{Ean: "7891234567895", Quantity: "1", UnitPrice: "10.00"}}}
	}
	pub := events.NewPublisher(st.JS, st.NS, "hipersync/test", events.FormatProtobuf)
	if _, err := pub.Publish(ctx, st.NS.StoreSubject("acme", events.KindOrderApproved), "s-mask-1", approval("M-1")); err != nil {
		t.Fatal(err)
	}
	personalData := []string{"joana.silva@example.com", "Joana", "Silva", "Rua Augusta", "1500", "Apto 12", "Consolação",
		"01310-100", "52998224725", "98765-4321"}
	masked := []string{`"email":"j***@e***.com"`, `"name":"J*** d*** S***"`, `"street":"R*** A***"`, `"postalCode":"01310-***"`,
		`"document":"*********25"`, `"ibgeCityCode":"3550308"`, `"orderId":"M-1"`}
	shows := func(out string, want ...string) bool {
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false
			}
		}
		return true
	}
	showsAny := func(out string, what []string) bool {
		for _, w := range what {
			if strings.Contains(out, w) {
				return true
			}
		}
		return false
	}
	through := throughConsole(t, c)
	for _, who := range []struct {
		name string
		env  map[string]string
	}{{"in this process", st.Env()}, {"an operator through the console", through(c.OperatorKey)}, {"acme's key", through(c.StoreKeys["acme"])}} {
		tail := func(args ...string) result {
			t.Helper()
			return runEnv(t, who.env, append([]string{"events", "tail", "--tenant", "acme", "--source", "store"}, args...)...)
		}
		for _, args := range [][]string{nil, {"--json"}} {
			if r := tail(args...); r.code != 0 || !strings.Contains(r.stdout, "M-1") || showsAny(r.stdout, personalData) {
				t.Errorf("%s: events tail %v shows the customer: %+v", who.name, args, r)
			}
		}
		if r := tail("--json"); !shows(r.stdout, masked...) {
			t.Errorf("%s: events tail --json, not masked as documented: %s", who.name, r.stdout)
		}
		if r := tail("--json", "--reveal"); r.code != 0 || !shows(r.stdout, personalData...) {
			t.Errorf("%s: events tail --json --reveal does not show the customer: %+v", who.name, r)
		}
		if r := tail("--reveal"); r.code != 0 || showsAny(r.stdout, personalData) {
			t.Errorf("%s: a text line names the customer even with --reveal: %+v", who.name, r)
		}
	}

	// The API's text filter (the console's log's) matches what is shown.
	for _, reveal := range []bool{false, true} {
		resp, err := c.Client(c.OperatorKey).QueryEvents(ctx, &adminv1.QueryEventsRequest{Filter: &adminv1.EventFilter{
			TenantId: "acme", Source: adminv1.EventSource_EVENT_SOURCE_STORE, Contains: "joana.silva@example.com", Reveal: reveal}})
		if err != nil || len(resp.GetEvents()) != map[bool]int{false: 0, true: 1}[reveal] {
			t.Errorf("QueryEvents contains the e-mail, reveal %v: %v %v", reveal, resp, err)
		}
	}

	// Followed through the console: masked, and whole with --reveal.
	for _, reveal := range []bool{false, true} {
		args := []string{"events", "tail", "--tenant", "acme", "--source", "store", "--since", "1ns", "--follow", "--json"}
		if reveal {
			args = append(args, "--reveal")
		}
		var live brokertest.SyncBuffer
		fctx, stop := context.WithCancel(ctx)
		done := make(chan int, 1)
		go func() {
			done <- Run(fctx, Env{Stdout: &live, Stderr: &live, Getenv: config.Map(through(c.OperatorKey))}, args)
		}()
		id := fmt.Sprintf("F-%v", reveal)
		n := 0
		testkit.WaitFor(t, 15*time.Second, "the followed approval", func() bool {
			n++
			if _, err := pub.Publish(ctx, st.NS.StoreSubject("acme", events.KindOrderApproved), fmt.Sprintf("%s-%d", id, n), approval(id)); err != nil {
				t.Fatal(err)
			}
			return strings.Contains(live.String(), id)
		})
		stop()
		if code := testkit.Recv(t, done, 30*time.Second, "events tail --follow to stop"); code != 0 {
			t.Fatalf("events tail --follow: exit %d, %s", code, live.String())
		}
		if out := live.String(); reveal != shows(out, personalData...) || reveal == shows(out, masked[:5]...) {
			t.Errorf("events tail --follow --json, reveal %v: %s", reveal, out)
		}
	}
}
