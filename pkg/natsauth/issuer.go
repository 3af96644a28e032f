package natsauth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	// it mints no store credentials. The error returned wraps it and says
	// why: the variable is not set, or names a file not there (yet).
	ErrNoSigningKey = errors.New("this deployment mints no store credentials")
	// ErrNoRevocation means the variables a revocation needs are not set,
	// or name files not there.
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
	// SigningKeyFile and OperatorKeyFile, when set, are read at each use
	// instead of SigningKey and OperatorKey: a key mounted after the
	// start (an optional Kubernetes Secret created later) is used from
	// then on, a renewed one at once, and a missing one refuses the call
	// naming its variable and file.
	SigningKeyFile, OperatorKeyFile string
}

// LoadIssuer reads the Issuer's variables: nil when SigningKeyEnv is not
// set. nc is the process's NATS configuration. A file named but not there
// (an optional Secret not created) is not an error: minting, or
// revoking, stays off until it is there, and each call says so (Missing
// tells the process's log). A file there that holds no key is an error.
func LoadIssuer(l *config.Loader, nc config.NATS, ns events.Namespace) (*Issuer, error) {
	signing, operator := l.String(SigningKeyEnv, ""), l.String(OperatorKeyEnv, "")
	i := &Issuer{NS: ns, NATS: nc, Account: l.String(AccountEnv, ""), SystemCreds: l.String(SystemCredsEnv, ""),
		SigningKeyFile: signing, OperatorKeyFile: operator}
	if err := l.Err(); err != nil || signing == "" {
		return nil, err
	}
	for env, file := range map[string]string{SigningKeyEnv: signing, OperatorKeyEnv: operator} {
		if _, err := readKey(env, file, nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return i, nil
}

// Missing says which of the Issuer's files are named but not there; nil
// when every one is, or i is nil.
func (i *Issuer) Missing() []error {
	if i == nil {
		return nil
	}
	var missing []error
	for _, f := range [][2]string{{SigningKeyEnv, i.SigningKeyFile}, {OperatorKeyEnv, i.OperatorKeyFile}, {SystemCredsEnv, i.SystemCreds}} {
		if err := notThere(f[0], f[1]); err != nil {
			missing = append(missing, err)
		}
	}
	return missing
}

// notThere says that env names file and file does not exist (an error
// that is fs.ErrNotExist); nil otherwise.
func notThere(env, file string) error {
	if _, err := os.Stat(file); file != "" && errors.Is(err, fs.ErrNotExist) {
		return missingFile{env, file}
	}
	return nil
}

type missingFile struct{ env, file string }

func (m missingFile) Error() string        { return m.env + " names " + m.file + ", which does not exist" }
func (m missingFile) Is(target error) bool { return target == fs.ErrNotExist }

// readKey reads the seed in file, which env names; kp without a file.
func readKey(env, file string, kp nkeys.KeyPair) (nkeys.KeyPair, error) {
	if file == "" {
		return kp, nil
	}
	if err := notThere(env, file); err != nil {
		return nil, err
	}
	kp, err := ReadSeed(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return kp, nil
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
func (i *Issuer) minter(ctx context.Context, signing nkeys.KeyPair) (Minter, error) {
	m := Minter{SigningKey: signing, Account: i.Account, NS: i.NS}
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
	if i == nil {
		return nil, "", fmt.Errorf("%w: %s is not set", ErrNoSigningKey, SigningKeyEnv)
	}
	signing, err := readKey(SigningKeyEnv, i.SigningKeyFile, i.SigningKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("%w: %w", ErrNoSigningKey, err)
	case err != nil:
		return nil, "", err
	case signing == nil:
		return nil, "", fmt.Errorf("%w: %s is not set", ErrNoSigningKey, SigningKeyEnv)
	}
	if err := tenant.ValidID(tenantID); err != nil {
		return nil, "", err
	}
	m, err := i.minter(ctx, signing)
	if err != nil {
		return nil, "", err
	}
	return m.Issue(ctx, tenantID, expires, i.Dial)
}

// Revoke ends every credential issued to tenant so far (Revoke).
func (i *Issuer) Revoke(ctx context.Context, tenantID string) error {
	if i == nil {
		return ErrNoRevocation
	}
	signing, err := readKey(SigningKeyEnv, i.SigningKeyFile, i.SigningKey)
	var operator nkeys.KeyPair
	if err == nil {
		operator, err = readKey(OperatorKeyEnv, i.OperatorKeyFile, i.OperatorKey)
	}
	if err == nil {
		err = notThere(SystemCredsEnv, i.SystemCreds)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", ErrNoRevocation, err)
	case err != nil:
		return err
	case signing == nil || operator == nil || i.SystemCreds == "":
		return ErrNoRevocation
	}
	if err := tenant.ValidID(tenantID); err != nil {
		return err
	}
	m, err := i.minter(ctx, signing)
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
	if err := Revoke(ctx, sys, operator, m.Account, pub); err != nil {
		return fmt.Errorf("revoke %s's credentials: %w", tenantID, err)
	}
	return nil
}
