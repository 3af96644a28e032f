package watcher

import (
	"context"
	"io"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/service"
)

// Main runs the invoice-watcher until ctx is done: it follows orders and
// serves health and metrics on HTTP_ADDR, then stops in the reverse order of
// intake (drain the consumers and the poll queue, then the connection).
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	s, err := LoadSettings(getenv)
	if err != nil {
		return err
	}
	return service.Main(ctx, "invoice-watcher", s.Common, getenv, logOut, func(p *service.Process) (service.Runner, error) {
		return Start(p.Background, Deps{
			NATS: p.NATS, Namespace: p.NS, Tokens: p.Broker, HiperBaseURL: s.HiperBaseURL,
			Format: p.Format, Health: p.Health, Log: p.Log, Config: s.Config,
		})
	})
}
