// Package syncstatus is the shared record of every tenant's syncs: one
// Status per tenant and kind in the sync_status bucket (cursor, schedule,
// outcome, lease), written by the schedulers (package schedule) and by the
// invoice-watcher, read by `hipersync status`; and the Request in
// sync_requests by which `hipersync sync` asks for a run now.
package syncstatus
