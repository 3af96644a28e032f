package tenant

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/durationpb"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
)

func TestSealRoundTripAndBinding(t *testing.T) {
	t.Parallel()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	s, err := NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("ab", 32)
	sealed, err := s.Seal("acme", key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(key)) {
		t.Fatal("sealed key contains the plain key")
	}
	if got, err := s.Open("acme", sealed); err != nil || got != key {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open("other", sealed); err != ErrSealBroken {
		t.Fatalf("another tenant's record opened it: %v", err)
	}
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	s2, _ := NewSealer(other)
	if _, err := s2.Open("acme", sealed); err != ErrSealBroken {
		t.Fatalf("another master key opened it: %v", err)
	}
	if _, err := s.Open("acme", sealed[:5]); err != ErrSealBroken {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := NewSealer(master[:16]); err == nil {
		t.Fatal("a 16-byte master key was accepted")
	}
}

func TestSettingsDefaultsAndOverrides(t *testing.T) {
	t.Parallel()
	def := SettingsOf(nil)
	if def.CatalogInterval() != 5*time.Minute || def.StockInterval() != time.Minute ||
		def.OrderWatchMaxAge() != 30*24*time.Hour || def.GuardMaxDeactivatePercent() != 20 || def.GuardMaxPriceCuts() != 50 {
		t.Fatalf("defaults: %v %v %v", def.CatalogInterval(), def.StockInterval(), def.OrderWatchMaxAge())
	}
	if id, ok := def.PaymentID("pix"); !ok || id != 12 {
		t.Fatalf("default PIX: %d %v", id, ok)
	}
	if _, ok := def.PaymentID("BITCOIN"); ok {
		t.Fatal("unknown method mapped")
	}
	if q, ok := def.Quote(""); !ok || !q.Equal(q.Div(q)) {
		t.Fatal("BRL quote")
	}
	if _, ok := def.Quote("USD"); ok {
		t.Fatal("USD quoted without a setting")
	}
	s := SettingsOf(&brokerv1.TenantSettings{
		StockInterval:  durationpb.New(30 * time.Second),
		PaymentMap:     map[string]int32{"PIX": 17},
		CurrencyQuotes: map[string]string{"USD": "5.40"},
	})
	if s.StockInterval() != 30*time.Second {
		t.Fatal("stock interval override")
	}
	if id, _ := s.PaymentID("PIX"); id != 17 {
		t.Fatal("payment map override")
	}
	if q, ok := s.Quote("usd"); !ok || q.String() != "5.4" {
		t.Fatalf("USD quote: %v %v", q, ok)
	}
}

func TestValidateSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    *brokerv1.TenantSettings
		want string
	}{
		{"defaults", &brokerv1.TenantSettings{}, ""},
		{"short interval", &brokerv1.TenantSettings{StockInterval: durationpb.New(time.Second)}, "stock-interval must be at least"},
		{"unknown method", &brokerv1.TenantSettings{PaymentMap: map[string]int32{"BITCOIN": 3}}, `unknown method "BITCOIN"`},
		{"bad id", &brokerv1.TenantSettings{PaymentMap: map[string]int32{"PIX": 0}}, "PIX=0 is not a Hiper payment id"},
		{"bad quote", &brokerv1.TenantSettings{CurrencyQuotes: map[string]string{"USD": "-1"}}, "USD=\"-1\" must be a positive decimal"},
		{"bad currency", &brokerv1.TenantSettings{CurrencyQuotes: map[string]string{"dollar": "5"}}, "not an ISO 4217 code"},
		{"bad percent", &brokerv1.TenantSettings{GuardMaxDeactivatePercent: 120}, "between 0 and 100"},
	} {
		err := Validate(tc.s)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestStateName(t *testing.T) {
	t.Parallel()
	if StateName(brokerv1.TenantState_TENANT_STATE_INVALID_KEY) != "invalid_key" || StateName(brokerv1.TenantState_TENANT_STATE_NOT_CONNECTED) != "not_connected" {
		t.Fatal("state names")
	}
}

func TestDirectoryFollowsTheBucket(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(testkit.NATSURL())
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", testkit.NATSURL(), err)
	}
	t.Cleanup(nc.Close) // after the bucket is deleted: cleanups run last-in first-out
	js, _ := jetstream.New(nc)
	bucket := fmt.Sprintf("test_tenants_%d", time.Now().UnixNano())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := js.DeleteKeyValue(context.Background(), bucket); err != nil {
			t.Errorf("delete bucket %s: %v", bucket, err)
		}
	})

	put := func(id string, state brokerv1.TenantState) {
		t.Helper()
		b, err := EncodeRecord(&brokerv1.TenantRecord{Tenant: &brokerv1.Tenant{TenantId: id, State: state}, SealedKey: []byte("sealed")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, id, b); err != nil {
			t.Fatal(err)
		}
	}
	put("acme", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	if _, err := kv.Put(ctx, "broken", []byte("not a record")); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := WatchDirectory(ctx, kv, log)
	if err != nil {
		t.Fatal(err)
	}
	if tn, ok := d.Get("acme"); !ok || tn.GetState() != brokerv1.TenantState_TENANT_STATE_ACTIVE {
		t.Fatalf("initial tenant not loaded: %v %v", tn, ok)
	}
	if _, ok := d.Get("broken"); ok {
		t.Fatal("an undecodable record became a tenant")
	}

	changes := make(chan Change, 10)
	d.OnChange(func(c Change) { changes <- c })
	put("acme", brokerv1.TenantState_TENANT_STATE_PAUSED)
	put("beta", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	if err := kv.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id    string
		state brokerv1.TenantState
		gone  bool
	}{{"acme", brokerv1.TenantState_TENANT_STATE_PAUSED, false}, {"beta", brokerv1.TenantState_TENANT_STATE_ACTIVE, false}, {"acme", 0, true}}
	for _, w := range want {
		select {
		case c := <-changes:
			if c.TenantID != w.id || (c.Tenant == nil) != w.gone || (!w.gone && c.Tenant.GetState() != w.state) {
				t.Fatalf("change %+v, want %+v", c, w)
			}
		case <-ctx.Done():
			t.Fatalf("no change for %s", w.id)
		}
	}
	if list := d.List(); len(list) != 1 || list[0].GetTenantId() != "beta" {
		t.Fatalf("list: %v", list)
	}
	cancel()
	testkit.Recv(t, d.Done(), 10*time.Second, "the directory to stop")
}

func TestSealerOpensWithPreviousKeysAndSaysSo(t *testing.T) {
	t.Parallel()
	oldKey, newKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(oldKey)
	_, _ = rand.Read(newKey)
	old, _ := NewSealer(oldKey)
	sealed, err := old.Seal("acme", "the-key")
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := NewSealer(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if key, stale, err := rotating.OpenStale("acme", sealed); err != nil || !stale || key != "the-key" {
		t.Fatalf("open under the previous key: %q %v %v", key, stale, err)
	}
	resealed, _ := rotating.Seal("acme", "the-key")
	if _, stale, err := rotating.OpenStale("acme", resealed); err != nil || stale {
		t.Fatalf("a key sealed under the current key reads as stale: %v %v", stale, err)
	}
	current, _ := NewSealer(newKey)
	if _, err := current.Open("acme", sealed); err != ErrSealBroken {
		t.Fatal("the new key alone opened what the old one sealed")
	}
	if _, err := NewSealer(newKey, oldKey[:8]); err == nil {
		t.Fatal("a short previous key was accepted")
	}
}

// TestQuoteIsBounded: a quote with a huge exponent is refused, without
// allocating its digits; an ordinary one is read exactly. Not parallel: it
// reads the process's allocations, to which the package's parallel tests
// (NATS clients, watches) would add theirs.
func TestQuoteIsBounded(t *testing.T) {
	raw := &brokerv1.TenantSettings{CurrencyQuotes: map[string]string{"USD": "5.40", "EUR": "1e999999999", "XAU": "1e-999999999"}}
	s := SettingsOf(raw)
	if q, ok := s.Quote("usd"); !ok || q.String() != "5.4" {
		t.Errorf("USD quote %s %v", q, ok)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range []string{"EUR", "XAU"} {
		if q, ok := s.Quote(c); ok {
			t.Errorf("%s quote %s accepted", c, q)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("reading a huge quote allocated %d bytes", grew)
	}
	if err := Validate(raw); err == nil || !strings.Contains(err.Error(), "EUR") {
		t.Errorf("Validate: %v", err)
	}
}
