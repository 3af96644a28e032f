module github.com/hipersync/hipersync/services/hiper-sim

go 1.26.0

require github.com/hipersync/hipersync/pkg v0.0.0

replace github.com/hipersync/hipersync/pkg => ../../pkg
