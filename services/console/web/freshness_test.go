package web

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
)

// The invoices' cell names both ceilings the watcher reports: the orders
// expecting their invoice are polled every 100 s, the others every 5 min;
// a sync with one interval shows it alone.
func TestFreshnessShowsTheInvoicesTwoCeilings(t *testing.T) {
	now := time.Now()
	invoices := &adminv1.SyncStatus{Kind: "invoices", LastSuccessAt: timestamppb.New(now.Add(-20 * time.Second)),
		TargetInterval: durationpb.New(5 * time.Minute), ExpectInterval: durationpb.New(100 * time.Second)}
	catalog := &adminv1.SyncStatus{Kind: "catalog", LastSuccessAt: timestamppb.New(now.Add(-20 * time.Second)),
		TargetInterval: durationpb.New(5 * time.Minute)}
	for _, c := range []struct {
		l             lang
		s             *adminv1.SyncStatus
		want, notWant string
	}{
		{pt, invoices, "meta " + shortDuration(100*time.Second) + " aguardando nota, " + shortDuration(5*time.Minute) + " as demais", ""},
		{en, invoices, "target " + shortDuration(100*time.Second) + " awaiting invoice, " + shortDuration(5*time.Minute) + " the others", ""},
		{en, catalog, "target " + shortDuration(5*time.Minute), "awaiting"},
	} {
		got := freshness(c.l, c.s, now).Text
		if !strings.Contains(got, c.want) || (c.notWant != "" && strings.Contains(got, c.notWant)) {
			t.Errorf("%s %s: %q, want it to say %q", c.l.tag(), c.s.GetKind(), got, c.want)
		}
	}
}
