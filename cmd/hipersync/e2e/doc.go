// Package e2e holds the end-to-end test of the whole system: the real
// binaries as separate processes over the machine's NATS and Redis, with
// hiper-sim standing in for Hiper.
package e2e
