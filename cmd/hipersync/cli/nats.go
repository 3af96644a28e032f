package cli

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/service"
)

// streams is a connection to the deployment's NATS (NATS_URL) and its
// namespace (HIPERSYNC_NAMESPACE).
type streams struct {
	nc *nats.Conn
	js jetstream.JetStream
	ns events.Namespace
}

func connectNATS(e Env) (*streams, error) {
	l := config.NewLoader(e.Getenv)
	common := l.LoadCommon()
	if err := l.Err(); err != nil {
		return nil, err
	}
	ns := service.NamespaceOf(common)
	if err := ns.Validate(); err != nil {
		return nil, fmt.Errorf("HIPERSYNC_NAMESPACE: %w", err)
	}
	nc, err := natsconn.Connect("hipersync-cli", common.NATS, nil)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	return &streams{nc: nc, js: js, ns: ns}, nil
}

func (s *streams) Close() { s.nc.Close() }
