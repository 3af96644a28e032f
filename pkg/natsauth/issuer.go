package natsauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// The variables a deployment mints and revokes store credentials with
// (README, "Configuration").
const (
	SigningKeyEnv  = "HIPERSYNC_NATS_SIGNING_KEY"
	AccountEnv     = "HIPERSYNC_NATS_ACCOUNT"
	OperatorKeyEnv = "HIPERSYNC_NATS_OPERATOR_KEY"
	SystemCredsEnv = "HIPERSYNC_NATS_SYSTEM_CREDS"
)

// DefaultExpiry is how long store credentials last unless asked otherwise.
const DefaultExpiry = 90 * 24 * time.Hour

var (
	// ErrNoSigningKey means the deployment has no account signing key:
	// it mints no store credentials.
	ErrNoSigningKey = errors.New("this deployment mints no store credentials: " + SigningKeyEnv + " is not set")
	// ErrNoRevocation means the variables a revocation needs are not set.
	ErrNoRevocation = errors.New("revoking store credentials needs " + SigningKeyEnv + ", " + OperatorKeyEnv + " and " + SystemCredsEnv)
)

// Issuer mints and revokes a deployment's store credentials with the keys
// its configuration names.
type Issuer struct {
	NS events.Namespace
	// NATS is the deployment's NATS: its URL and TLS options, which new
	// credentials are proved against, and this process's own user, whose
	// account store users join when Account is empty.
	NATS config.NATS
	// SigningKey is the account's signing key (SigningKeyEnv), preferably
	// the scoped one (StoreScope).
	SigningKey nkeys.KeyPair
	// Account is AccountEnv: the account's public key.
	Account string
	// OperatorKey (OperatorKeyEnv) signs the account's revocation list,
	// pushed as a system-account user (SystemCreds, SystemCredsEnv); nil,
	// no revocation.
	OperatorKey nkeys.KeyPair
	SystemCreds string
}

// LoadIssuer reads the Issuer's variables: nil when SigningKeyEnv is not
// set. nc is the process's NATS configuration.
func LoadIssuer(l *config.Loader, nc config.NATS, ns events.Namespace) (*Issuer, error) {
	signing, operator, system := l.File(SigningKeyEnv), l.File(OperatorKeyEnv), l.File(SystemCredsEnv)
	account := l.String(AccountEnv, "")
	if err := l.Err(); err != nil || signing == "" {
		return nil, err
	}
	i := &Issuer{NS: ns, NATS: nc, Account: account, SystemCreds: system}
	var err error
	if i.SigningKey, err = ReadSeed(signing); err != nil {
		return nil, fmt.Errorf("%s: %w", SigningKeyEnv, err)
	}
	if operator != "" {
		if i.OperatorKey, err = ReadSeed(operator); err != nil {
			return nil, fmt.Errorf("%s: %w", OperatorKeyEnv, err)
		}
	}
	return i, nil
}

// Dial connects to the deployment's NATS (URL and TLS) as whoever opts say.
func (i *Issuer) Dial(opts ...nats.Option) (*nats.Conn, error) {
	base, err := natsconn.Options("hipersync-credentials", config.NATS{URL: i.NATS.URL, TLSCA: i.NATS.TLSCA, TLSCert: i.NATS.TLSCert, TLSKey: i.NATS.TLSKey}, nil)
	if err != nil {
		return nil, err
	}
	return nats.Connect(i.NATS.URL, append(base, opts...)...)
}

// minter is the Minter of the account: Account, or the account of the
// process's own NATS user.
func (i *Issuer) minter(ctx context.Context) (Minter, error) {
	m := Minter{SigningKey: i.SigningKey, Account: i.Account, NS: i.NS}
	if m.Account != "" {
		return m, nil
	}
	nc, err := natsconn.Connect("hipersync-credentials", i.NATS, nil, nats.MaxReconnects(0))
	if err != nil {
		return m, err
	}
	defer nc.Close()
	info, err := UserInfo(ctx, nc)
	if err != nil {
		return m, fmt.Errorf("%w (set %s to the account's public key)", err, AccountEnv)
	}
	m.Account = info.Account
	return m, nil
}

// Issue mints tenant's credentials, valid for expires (0: never), proved
// against the server (Minter.Issue); user is the store's NATS user.
func (i *Issuer) Issue(ctx context.Context, tenantID string, expires time.Duration) (creds []byte, user string, err error) {
	if i == nil || i.SigningKey == nil {
		return nil, "", ErrNoSigningKey
	}
	if err := tenant.ValidID(tenantID); err != nil {
		return nil, "", err
	}
	m, err := i.minter(ctx)
	if err != nil {
		return nil, "", err
	}
	return m.Issue(ctx, tenantID, expires, i.Dial)
}

// Revoke ends every credential issued to tenant so far (Revoke).
func (i *Issuer) Revoke(ctx context.Context, tenantID string) error {
	if i == nil || i.SigningKey == nil || i.OperatorKey == nil || i.SystemCreds == "" {
		return ErrNoRevocation
	}
	if err := tenant.ValidID(tenantID); err != nil {
		return err
	}
	m, err := i.minter(ctx)
	if err != nil {
		return err
	}
	user, err := StoreUserKey(m.SigningKey, i.NS, tenantID)
	if err != nil {
		return err
	}
	pub, _ := user.PublicKey()
	sys, err := i.Dial(nats.UserCredentials(i.SystemCreds), nats.MaxReconnects(0))
	if err != nil {
		return fmt.Errorf("connect to NATS as the system account (%s): %w", SystemCredsEnv, err)
	}
	defer sys.Close()
	if err := Revoke(ctx, sys, i.OperatorKey, m.Account, pub); err != nil {
		return fmt.Errorf("revoke %s's credentials: %w", tenantID, err)
	}
	return nil
}
