// Package ops holds the operations an operator runs against a deployment,
// shared by the admin API (services/console) and the CLI so that each rule
// lives in one place: each tenant's status joined from the registry and the
// pollers' status store, "sync now" and the approval of a held change, and
// the sync log with its filters.
package ops
