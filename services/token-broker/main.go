// Command token-broker is the only hipersync process that holds Hiper
// security keys. It hands out Hiper tokens over gRPC and owns the tenant
// registry. Configuration: README, "Configuration".
package main

import (
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/services/token-broker/broker"
)

func main() {
	broker.TuneGC()
	service.Command("token-broker", broker.Main)
}
