package events

import (
	"errors"
	"testing"
)

// A body that is not a NATS message is listed with the failed messages,
// recorded once per id, and refused by RetryDeadLetter: its subject names
// no event to replay.
func TestDeadLetterBody(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	b := Body{
		ID: "acme:1001:answer:1", Tenant: "acme", Consumer: "invoice-watcher",
		Subject: e.ns.ServiceSubject("invoicewatch", "acme", "1001"), Code: "hiper_bad_answer",
		Cause: errors.New("cancelado is not a boolean"), Headers: map[string]string{"http-status": "200"},
		Data: []byte(`{"cancelado":"talvez"}`),
	}
	for range 2 {
		if err := DeadLetterBody(t.Context(), e.js, e.ns, b); err != nil {
			t.Fatalf("DeadLetterBody: %v", err)
		}
	}
	entries, err := ListDeadLetters(t.Context(), e.js, e.ns, 0)
	if err != nil {
		t.Fatalf("ListDeadLetters: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("got %d dead letters, want 1 (the second is a duplicate)", len(entries))
	}
	dl := entries[0].Letter
	if dl.GetReasonCode() != b.Code || string(dl.GetData()) != string(b.Data) || dl.GetTenant() != "acme" ||
		dl.GetSubject() != b.Subject || dl.GetHeaders()["http-status"] != "200" || dl.GetConsumer() != "invoice-watcher" {
		t.Errorf("dead letter = %v", dl)
	}
	if want := e.ns.DeadLetterSubject("acme", "invoice-watcher"); entries[0].Subject != want {
		t.Errorf("record subject = %q, want %q", entries[0].Subject, want)
	}
	if err := RetryDeadLetter(t.Context(), e.js, e.ns, entries[0].Seq); !errors.Is(err, ErrInvalidSubject) {
		t.Errorf("RetryDeadLetter = %v, want ErrInvalidSubject", err)
	}
	if err := DeadLetterBody(t.Context(), e.js, e.ns, Body{ID: "x"}); err == nil {
		t.Error("DeadLetterBody without Consumer, Code and Cause: no error")
	}
}
