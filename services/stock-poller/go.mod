module github.com/hipersync/hipersync/services/stock-poller

go 1.26.0

require github.com/hipersync/hipersync/pkg v0.0.0

replace github.com/hipersync/hipersync/pkg => ../../pkg
