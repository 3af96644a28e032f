package natsauth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natstest"
)

// isolation is an operator-mode NATS (a nats-server process) started for
// one test, with the namespace's streams and tenants bucket provisioned by
// the services' user.
type isolation struct {
	op  *Operator
	url string
	svc *nats.Conn
	js  jetstream.JetStream
	ns  events.Namespace
}

func startIsolation(t *testing.T) *isolation {
	t.Helper()
	ns := events.Namespace{Prefix: "iso"}
	op, err := LoadOperator(t.TempDir(), ns)
	if err != nil {
		t.Fatal(err)
	}
	url := natstest.StartServer(t, op.ServerConfig()).URL()
	svc, err := nats.Connect(url, nats.UserCredentials(op.Path(ServicesCredsFile)))
	if err != nil {
		t.Fatalf("the services' user: %v", err)
	}
	t.Cleanup(svc.Close)
	js, _ := jetstream.New(svc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureKV(ctx, js, ns, "tenants"); err != nil {
		t.Fatal(err)
	}
	return &isolation{op: op, url: url, svc: svc, js: js, ns: ns}
}

func (s *isolation) dial(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(s.url, opts...)
}

// store connects with creds as tenant's platform would, reporting the
// server's asynchronous errors (permission violations) on the channel.
func (s *isolation) store(t *testing.T, tenant string, creds []byte) (*nats.Conn, <-chan error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), tenant+".creds")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := s.dial(nats.UserCredentials(file), nats.CustomInboxPrefix(InboxPrefix(s.ns, tenant)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect as %s: %v", tenant, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func refused(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("%s: want a permissions violation, got %v", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the server did not refuse it", what)
	}
}

func TestAStoreActsOnlyAsItself(t *testing.T) {
	t.Parallel()
	s := startIsolation(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	minter := s.op.Minter()
	acmeCreds, acmeKey, err := minter.Issue(ctx, "acme", time.Hour, s.dial)
	if err != nil {
		t.Fatalf("issue acme's credentials: %v", err)
	}
	if _, _, err := minter.Issue(ctx, "globex", time.Hour, s.dial); err != nil {
		t.Fatalf("issue globex's credentials: %v", err)
	}
	// The scoped signing key made a JWT with no permissions of its own: the
	// key's template gives them.
	claims, _ := jwt.ParseDecoratedJWT(acmeCreds)
	uc, err := jwt.DecodeUserClaims(claims)
	if err != nil || !uc.HasEmptyPermissions() || uc.Expires == 0 || !uc.Tags.Contains("tenant:acme") {
		t.Fatalf("acme's JWT: %+v %v", uc, err)
	}

	acme, errs := s.store(t, "acme", acmeCreds)
	ajs, _ := jetstream.New(acme)

	// Its own approved order is stored.
	ack, err := ajs.Publish(ctx, s.ns.StoreSubject("acme", events.KindOrderApproved), []byte(`{"orderId":"1"}`))
	if err != nil || ack.Stream != s.ns.Stream(events.StreamStore) {
		t.Fatalf("publish its own order: %+v %v", ack, err)
	}
	// Its own events, on a durable consumer filtered inside its subjects.
	cons, err := ajs.CreateOrUpdateConsumer(ctx, s.ns.Stream(events.StreamHiper), jetstream.ConsumerConfig{
		Durable: "acme", FilterSubject: s.ns.HiperSubject("acme", ">"), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("create its own consumer: %v", err)
	}
	if _, err := s.js.Publish(ctx, s.ns.HiperSubject("acme", events.KindOrderAccepted), []byte("accepted")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.js.Publish(ctx, s.ns.HiperSubject("globex", events.KindOrderAccepted), []byte("not for acme")); err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if strings.Join(got, ",") != "accepted" {
		t.Fatalf("acme's consumer got %q", got)
	}
	// And a plain subscription to its own events.
	if _, err := acme.SubscribeSync(s.ns.HiperSubject("acme", ">")); err != nil {
		t.Fatal(err)
	}
	if err := acme.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("an allowed action was refused: %v", err)
	default:
	}

	// Everything else is refused by the server.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }
	_ = acme.Publish(s.ns.StoreSubject("globex", events.KindOrderApproved), []byte(`{"orderId":"2"}`))
	refused(t, errs, "publish another store's order")
	_, _ = acme.SubscribeSync(s.ns.HiperSubject("globex", ">"))
	refused(t, errs, "subscribe to another store's events")
	_, _ = acme.SubscribeSync(s.ns.HiperSubject("*", ">"))
	refused(t, errs, "subscribe to every store's events")
	for name, cfg := range map[string]jetstream.ConsumerConfig{
		"an unfiltered consumer":             {Durable: "acme"},
		"a consumer on another store":        {Durable: "acme", FilterSubject: s.ns.HiperSubject("globex", ">")},
		"a consumer on every store":          {Durable: "acme", FilterSubject: s.ns.HiperSubject("*", ">")},
		"another store's consumer":           {Durable: "globex", FilterSubject: s.ns.HiperSubject("acme", ">")},
		"a consumer with two filters":        {Durable: "acme", FilterSubjects: []string{s.ns.HiperSubject("acme", ">"), s.ns.HiperSubject("globex", ">")}},
		"an ephemeral consumer":              {FilterSubject: s.ns.HiperSubject("acme", ">")},
		"a consumer on the STORE stream":     {Durable: "acme", FilterSubject: s.ns.StoreSubject("acme", ">")},
		"a consumer with a wildcard tenant ": {Durable: "acme", FilterSubject: s.ns.HiperSubject("*", "order.accepted")},
	} {
		stream := s.ns.Stream(events.StreamHiper)
		if name == "a consumer on the STORE stream" {
			stream = s.ns.Stream(events.StreamStore)
		}
		c, cancel := short()
		_, err := ajs.CreateOrUpdateConsumer(c, stream, cfg)
		cancel()
		if err == nil {
			t.Fatalf("%s: created", name)
		}
		refused(t, errs, name)
	}
	_ = acme.Publish("$KV."+s.ns.Bucket("tenants")+".acme", []byte("x"))
	refused(t, errs, "write the tenants bucket")
	_, _ = acme.SubscribeSync("$KV.>")
	refused(t, errs, "watch the KV buckets")
	c, cancel2 := short()
	_, err = ajs.KeyValue(c, s.ns.Bucket("tenants"))
	cancel2()
	if err == nil {
		t.Fatal("opened the tenants bucket")
	}
	refused(t, errs, "open the tenants bucket")
	c, cancel3 := short()
	err = ajs.DeleteStream(c, s.ns.Stream(events.StreamHiper))
	cancel3()
	if err == nil {
		t.Fatal("deleted the HIPER stream")
	}
	refused(t, errs, "delete a stream")

	// Revoked: the server refuses the credentials from then on.
	sys, err := nats.Connect(s.url, nats.UserCredentials(s.op.Path(SystemCredsFile)))
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if err := Revoke(ctx, sys, s.op.Operator, s.op.AccountPub, acmeKey); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	file := filepath.Join(t.TempDir(), "acme.creds")
	_ = os.WriteFile(file, acmeCreds, 0o600)
	if nc, err := s.dial(nats.UserCredentials(file)); err == nil {
		nc.Close()
		t.Fatal("a revoked credential connected")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("want an authorization violation, got %v", err)
	}
}

// An unscoped signing key (here the account's own key) works too: the JWT
// then carries the permissions, and the server applies exactly them.
func TestAnUnscopedSigningKeyCarriesThePermissions(t *testing.T) {
	t.Parallel()
	s := startIsolation(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := Minter{SigningKey: s.op.Account, Account: s.op.AccountPub, NS: s.ns}
	creds, _, err := m.Issue(ctx, "acme", 0, s.dial)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := jwt.ParseDecoratedJWT(creds)
	uc, _ := jwt.DecodeUserClaims(token)
	if uc.HasEmptyPermissions() || uc.Expires != 0 {
		t.Fatalf("JWT of an unscoped key: %+v", uc)
	}
	acme, errs := s.store(t, "acme", creds)
	_ = acme.Publish(s.ns.StoreSubject("globex", events.KindOrderApproved), nil)
	refused(t, errs, "publish another store's order")
}

// docs/operations.md lists the services' NATS permissions for an operator
// to grant: the list is ServicePermissions, no more and no less.
func TestDocumentedServicePermissions(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "#### NATS permissions of the services\n")
	if i < 0 {
		t.Fatal(`docs/operations.md has no section "NATS permissions of the services"`)
	}
	doc = doc[i+1:]
	if j := strings.Index(doc, "\n#"); j >= 0 {
		doc = doc[:j]
	}
	var pub, sub []string
	for _, m := range regexp.MustCompile(`--allow-(pub|sub) '([^']+)'`).FindAllStringSubmatch(doc, -1) {
		if m[1] == "pub" {
			pub = append(pub, m[2])
		} else {
			sub = append(sub, m[2])
		}
	}
	want := ServicePermissions(events.Namespace{})
	slices.Sort(pub)
	slices.Sort(sub)
	wantPub, wantSub := slices.Sorted(slices.Values(want.Pub.Allow)), slices.Sorted(slices.Values(want.Sub.Allow))
	if !slices.Equal(pub, wantPub) || !slices.Equal(sub, wantSub) {
		t.Errorf("docs/operations.md grants publish %v, subscribe %v; the services need publish %v, subscribe %v",
			pub, sub, wantPub, wantSub)
	}
	if len(want.Pub.Deny) > 0 || len(want.Sub.Deny) > 0 {
		t.Error("ServicePermissions denies subjects the docs do not list")
	}
}
