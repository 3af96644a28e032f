// Package devnats runs an in-process nats-server in operator mode for
// `hipersync dev` and the CLI's tests: the server module stays out of pkg,
// which the services link.
package devnats

import (
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/hipersync/hipersync/pkg/natsauth"
)

// Configure puts opts in operator mode: o trusted, its system account, and
// both accounts in an in-memory resolver that takes updates (revocations)
// from the system account.
func Configure(o *natsauth.Operator, opts *natsserver.Options) {
	res := &natsserver.MemAccResolver{}
	for pub, token := range o.AccountJWTs() {
		_ = res.Store(pub, token)
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{o.OperatorClaims()}
	opts.SystemAccount = o.OperatorClaims().SystemAccount
	opts.AccountResolver = res
}

// Start starts an in-process nats-server trusting o, with JetStream on
// host:port (port -1: a free one), keeping its data in storeDir, and waits
// until it takes connections.
func Start(o *natsauth.Operator, name, host string, port int, storeDir string) (*natsserver.Server, error) {
	opts := &natsserver.Options{ServerName: name, Host: host, Port: port, JetStream: true,
		StoreDir: storeDir, NoSigs: true, NoLog: true}
	Configure(o, opts)
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("NATS did not start on %s:%d (is the port taken?)", host, port)
	}
	return srv, nil
}
