package forwarder

import (
	"context"
	"io"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/service"
)

// Main runs the order-forwarder until ctx is done: it consumes order events
// and serves health and metrics on HTTP_ADDR, then stops in the reverse
// order of intake (drain the consumer, then the connection).
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	return service.MainWith(ctx, "order-forwarder", getenv, logOut, loadConfig,
		func(ctx context.Context, d service.Deps, c Config) (*Forwarder, error) {
			return Start(ctx, Deps{Deps: d, Config: c})
		})
}
