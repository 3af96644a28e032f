package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func TestEventsTailAndDeadLetters(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := map[string]string{"HIPERSYNC_NAMESPACE": st.NS.Prefix, "NATS_URL": brokertest.EnvOr("NATS_URL", nats.DefaultURL)}
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
	brokertest.WaitFor(t, 10*time.Second, "the poison message to be dead-lettered", func() bool {
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
	brokertest.WaitFor(t, 10*time.Second, "the replayed message to be dead-lettered again", func() bool {
		_ = json.Unmarshal([]byte(cli("dlq", "list", "--json").stdout), &again)
		return len(again.DeadLetters) == 1 && again.DeadLetters[0].ID != letters[0].ID
	})
	// Another one: the list shows the newest first, and says how many
	// older ones its limit leaves out.
	if _, err := st.JS.Publish(ctx, poison, []byte("still not an event")); err != nil {
		t.Fatal(err)
	}
	var two deadLetterList
	brokertest.WaitFor(t, 10*time.Second, "a second dead letter", func() bool {
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
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if len(handled) != 1 { // the good stock event only
		t.Fatalf("handled %d good events, want 1", len(handled))
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }
