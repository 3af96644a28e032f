package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// dedicatedNATS is a nats-server (the pinned Go module, in process) started
// for one test, on a free port, with JetStream and two users: "services",
// holding exactly natsauth.ServicePermissions — what docs/operations.md
// tells an operator to grant — for every service and the CLI; and "store",
// unrestricted, for the test itself (it plays the store and reads what
// hipersync published).
type dedicatedNATS struct {
	ServicesURL, TestURL string

	mu         sync.Mutex
	violations []string
}

func startNATS(t *testing.T, ns events.Namespace) *dedicatedNATS {
	t.Helper()
	perms := natsauth.ServicePermissions(ns)
	pw := testkit.RandomHex(16)
	opts := &natsserver.Options{
		ServerName: "e2e", Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		// Stream and bucket bounds are reservations, not disk in use.
		JetStreamMaxStore: 1 << 40, JetStreamMaxMemory: 1 << 30,
		Users: []*natsserver.User{
			{Username: "services", Password: pw, Permissions: &natsserver.Permissions{
				Publish:   &natsserver.SubjectPermission{Allow: perms.Pub.Allow, Deny: perms.Pub.Deny},
				Subscribe: &natsserver.SubjectPermission{Allow: perms.Sub.Allow, Deny: perms.Sub.Deny},
			}},
			{Username: "store", Password: pw},
		},
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	d := &dedicatedNATS{}
	srv.SetLoggerV2(violationLog{d}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the test's nats-server did not start")
	}
	t.Cleanup(srv.Shutdown)
	addr := srv.Addr().String()
	d.ServicesURL = fmt.Sprintf("nats://services:%s@%s", pw, addr)
	d.TestURL = fmt.Sprintf("nats://store:%s@%s", pw, addr)
	return d
}

// Violations returns the permission violations the server logged: what a
// service or the CLI tried that the documented permissions do not allow.
func (d *dedicatedNATS) Violations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.violations...)
}

// violationLog keeps the server's log lines about permission violations.
type violationLog struct{ d *dedicatedNATS }

func (l violationLog) keep(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if strings.Contains(line, "Violation") {
		l.d.mu.Lock()
		l.d.violations = append(l.d.violations, line)
		l.d.mu.Unlock()
	}
}

func (l violationLog) Noticef(format string, v ...any) { l.keep(format, v...) }
func (l violationLog) Warnf(format string, v ...any)   { l.keep(format, v...) }
func (l violationLog) Fatalf(format string, v ...any)  { l.keep(format, v...) }
func (l violationLog) Errorf(format string, v ...any)  { l.keep(format, v...) }
func (l violationLog) Debugf(format string, v ...any)  { l.keep(format, v...) }
func (l violationLog) Tracef(format string, v ...any)  { l.keep(format, v...) }
