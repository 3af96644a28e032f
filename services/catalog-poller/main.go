// Command catalog-poller publishes each tenant's Hiper catalog as events:
// products, prices, held mass changes. Configuration: README, "Configuration".
package main

import (
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/services/catalog-poller/catalogsync"
)

func main() { service.Command("catalog-poller", catalogsync.Main) }
