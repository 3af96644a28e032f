// Command order-forwarder creates and cancels the store's orders in Hiper,
// each exactly once, and publishes the outcome. Configuration: README,
// "Configuration" and "Orders".
package main

import (
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/services/order-forwarder/forwarder"
)

func main() { service.Command("order-forwarder", forwarder.Main) }
