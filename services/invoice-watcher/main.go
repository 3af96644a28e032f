// Command invoice-watcher follows every order Hiper accepted until it is
// final and publishes its invoice, shipping, failure and the merchant's
// cancellation back to the store. Configuration: README, "Configuration"
// and "Invoices, shipping, cancellations".
package main

import (
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
)

func main() { service.Command("invoice-watcher", watcher.Main) }
