package natsauth

import (
	"github.com/nats-io/jwt/v2"

	"github.com/hipersync/hipersync/pkg/events"
)

// ServicePermissions is all the services' NATS user (and the operator
// CLI's, which acts for them) needs in namespace ns, and no more:
//
//   - publish the events and records of hipersync's own streams (STORE for
//     a replayed or resent store order, HIPER, DEADLETTER, the
//     invoice-watcher's poll tasks, the console's audit log);
//   - the JetStream API (provisioning, consumers, direct reads), acks and
//     flow-control replies of the consumers it reads, and KV writes;
//   - receive on its inboxes: replies, and the messages JetStream delivers.
//
// docs/operations.md lists them for an empty namespace ("NATS permissions
// of the services"); the test of this package keeps the two the same, and
// the end-to-end test runs every service and the CLI under a user holding
// exactly these.
func ServicePermissions(ns events.Namespace) jwt.Permissions {
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{
			ns.StreamSubjects(events.StreamStore),
			ns.StreamSubjects(events.StreamHiper),
			ns.StreamSubjects(events.StreamDeadLetter),
			ns.ServiceSubject(invoiceTasks, ">"),
			ns.ServiceSubject(auditLog, ">"),
			"$JS.API.>",
			"$JS.ACK.>",
			"$JS.FC.>",
			"$KV.>",
		}},
		Sub: jwt.Permission{Allow: jwt.StringList{"_INBOX.>"}},
	}
}

// The first subject tokens of the service streams outside pkg/events:
// the invoice-watcher's poll tasks (watcher.TaskStream) and the console's
// audit log (admin.AuditStream). The end-to-end test fails if the first is
// wrong.
const (
	invoiceTasks = "invoicewatch"
	auditLog     = "audit"
)
