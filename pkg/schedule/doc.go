// Package schedule decides when and where each tenant's catalog and stock
// polls run, for every poller replica at once, with no scheduler of its own
// that could die.
//
// Every replica watches three key-value buckets: the tenants bucket (through
// a tenant.Directory: new, paused, disconnected tenants and their settings),
// sync_status (one syncstatus.Status per tenant and kind: cursor, schedule, outcome and
// lease) and sync_requests (a "sync now" asked for by an operator). From them
// each replica computes the same due time per tenant. When a tenant is due,
// replicas with a free slot race to take its lease: a compare-and-set of the
// Status record on its revision, so exactly one wins. The winner runs the
// Job, renewing the lease while it runs and recording progress (the cursor
// after each batch) through the same compare-and-set, which also fences a
// replica that lost its lease; then it writes the outcome and the next due
// time and releases the lease. A replica that dies holding a lease loses it
// when the lease expires, and another takes over from the saved cursor.
//
// Runs are spaced at a fixed rate per tenant (the tenant's interval, with a
// random phase chosen at its second run so tenants do not poll in step),
// bounded by a per-replica concurrency limit, paced per tenant (a token
// bucket in front of every Hiper call), and backed off exponentially after a
// failure, honouring Hiper's Retry-After.
//
// The Status and Request records, and the buckets they live in, are package
// syncstatus's: what `hipersync status` shows and how `hipersync sync` asks
// for a run. Package poller runs a scheduler as a service.
package schedule
