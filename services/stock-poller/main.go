// Command stock-poller publishes each tenant's Hiper stock levels as events
// when they change. Configuration: README, "Configuration".
package main

import (
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/services/stock-poller/stocksync"
)

func main() { service.Command("stock-poller", stocksync.Main) }
