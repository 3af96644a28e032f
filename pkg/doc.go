// Package pkg is the root of hipersync's shared module. The code lives in its
// subpackages: hiper (the Hiper API client), hipersim (the Hiper simulator),
// events (subjects, envelope, streams and the consumer loop), and gen (code
// generated from proto/).
package pkg
