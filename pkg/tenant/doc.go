// Package tenant is the one model of a store (tenant) that every hipersync
// service shares: its record in the tenants key-value bucket, its settings
// with their documented defaults, the sealing of its Hiper security key, and a
// Directory that keeps a live copy of every tenant by watching the bucket.
//
// token-broker is the only writer of the bucket and the only holder of the
// master key; the other services only read, through a Directory.
package tenant
