package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// The variables of store credentials (README, "Configuration").
const (
	signingKeyEnv  = "HIPERSYNC_NATS_SIGNING_KEY"
	accountEnv     = "HIPERSYNC_NATS_ACCOUNT"
	operatorKeyEnv = "HIPERSYNC_NATS_OPERATOR_KEY"
	systemCredsEnv = "HIPERSYNC_NATS_SYSTEM_CREDS"
)

const credentialsUsage = `usage:
  hipersync tenant credentials <tenant> [--out FILE] [--expires D]
  hipersync tenant credentials <tenant> --revoke`

// natsAuth is what minting and revoking store credentials read.
type natsAuth struct {
	nats config.NATS
	ns   events.Namespace
}

func loadNATSAuth(e Env) (natsAuth, *config.Loader) {
	l := config.NewLoader(e.Getenv)
	a := natsAuth{nats: l.LoadNATS()}
	a.ns.Prefix = l.String(events.NamespaceEnv, "")
	return a, l
}

func (a *app) credentialsCmd() *cobra.Command {
	c := &cobra.Command{Use: "credentials <tenant>", Short: "mint a store's NATS credentials (.creds), or revoke them all",
		Long: "mint a store's NATS credentials (.creds), or revoke them all\n\n" + credentialsUsage}
	var f credentialsFlags
	fs := c.Flags()
	fs.StringVar(&f.out, "out", "", "write the .creds file here (mode 0600) instead of stdout")
	fs.DurationVar(&f.expires, "expires", 90*24*time.Hour, "how long the credentials are valid; 0 never expires")
	fs.BoolVar(&f.revoke, "revoke", false, "revoke every credential issued to the store so far")
	c.RunE = func(_ *cobra.Command, pos []string) error { return runCredentials(a.ctx, a.e, pos, f, a.asJSON) }
	return c
}

// credentialsFlags are the flags of `tenant credentials`.
type credentialsFlags struct {
	out     string
	expires time.Duration
	revoke  bool
}

// runCredentials mints a store's NATS credentials, or revokes them all.
func runCredentials(ctx context.Context, e Env, pos []string, f credentialsFlags, asJSON bool) error {
	out, expires, revoke := &f.out, &f.expires, &f.revoke
	if len(pos) != 1 {
		return usagef("tenant credentials: want a tenant\n%s", credentialsUsage)
	}
	tenantID := pos[0]
	if err := tenant.ValidID(tenantID); err != nil {
		return usagef("tenant credentials: %v", err)
	}
	if *expires < 0 {
		return usagef("tenant credentials: --expires must not be negative")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if *revoke {
		if err := revokeStore(ctx, e, tenantID); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e.Stdout, map[string]any{"tenant": tenantID, "revoked": true})
		}
		fmt.Fprintf(e.Stdout, "every credential issued to %s so far is revoked; mint new ones with `hipersync tenant credentials %s`\n", tenantID, tenantID)
		return nil
	}

	a, l := loadNATSAuth(e)
	signingFile := l.File(signingKeyEnv)
	if signingFile == "" && l.Err() == nil {
		l.Required(signingKeyEnv)
	}
	if err := l.Err(); err != nil {
		return err
	}
	if err := a.ns.Validate(); err != nil {
		return fmt.Errorf("%s: %w", events.NamespaceEnv, err)
	}
	m, err := a.minter(ctx, e, signingFile)
	if err != nil {
		return err
	}
	creds, user, err := m.Issue(ctx, tenantID, *expires, a.dial)
	if err != nil {
		return err
	}
	inbox := natsauth.InboxPrefix(a.ns, tenantID)
	if *out == "" {
		_, err := e.Stdout.Write(creds)
		return err
	}
	if err := os.WriteFile(*out, creds, 0o600); err != nil {
		return fmt.Errorf("write the credentials: %w", err)
	}
	expiresAt := "never"
	if *expires > 0 {
		expiresAt = time.Now().Add(*expires).UTC().Format(time.RFC3339)
	}
	if asJSON {
		return writeJSON(e.Stdout, map[string]any{"tenant": tenantID, "file": *out, "user": user, "expires": expiresAt,
			"inbox_prefix": inbox, "publish": a.ns.StoreSubject(tenantID, ">"), "subscribe": a.ns.HiperSubject(tenantID, ">"),
			"consumer": tenantID})
	}
	fmt.Fprintf(e.Stdout, `wrote %s for store %s (user %s, expires %s)
It may publish %s, subscribe to %s, and read the HIPER stream
through a durable consumer named %q filtered inside %s.
Its client must use the inbox prefix %s
(nats.go: nats.CustomInboxPrefix; nats CLI: --inbox-prefix).
`, *out, tenantID, user, expiresAt, a.ns.StoreSubject(tenantID, ">"), a.ns.HiperSubject(tenantID, ">"),
		tenantID, a.ns.HiperSubject(tenantID, ">"), inbox)
	return nil
}

// dial connects to the deployment's NATS (URL and TLS) as whoever opts say.
func (a natsAuth) dial(opts ...nats.Option) (*nats.Conn, error) {
	base, err := natsconn.Options("hipersync-cli", config.NATS{URL: a.nats.URL, TLSCA: a.nats.TLSCA, TLSCert: a.nats.TLSCert, TLSKey: a.nats.TLSKey}, nil)
	if err != nil {
		return nil, err
	}
	return nats.Connect(a.nats.URL, append(base, opts...)...)
}

// account is HIPERSYNC_NATS_ACCOUNT or, unset, the account the CLI's own
// NATS user (NATS_CREDS) belongs to.
func (a natsAuth) account(ctx context.Context, e Env) (string, error) {
	if v := e.Getenv(accountEnv); v != "" {
		return v, nil
	}
	nc, err := natsconn.Connect("hipersync-cli", a.nats, nil, nats.MaxReconnects(0))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	info, err := natsauth.UserInfo(ctx, nc)
	if err != nil {
		return "", fmt.Errorf("%w (set %s to the account's public key)", err, accountEnv)
	}
	return info.Account, nil
}

func (a natsAuth) minter(ctx context.Context, e Env, signingFile string) (natsauth.Minter, error) {
	key, err := natsauth.ReadSeed(signingFile)
	if err != nil {
		return natsauth.Minter{}, fmt.Errorf("%s: %w", signingKeyEnv, err)
	}
	account, err := a.account(ctx, e)
	if err != nil {
		return natsauth.Minter{}, err
	}
	return natsauth.Minter{SigningKey: key, Account: account, NS: a.ns}, nil
}

// errNoRevocation means the variables a revocation needs are not set.
var errNoRevocation = errors.New("revoking store credentials needs " + signingKeyEnv + ", " + operatorKeyEnv + " and " + systemCredsEnv)

// revokeStore puts tenant's user in the account's revocation list.
func revokeStore(ctx context.Context, e Env, tenant string) error {
	a, l := loadNATSAuth(e)
	signingFile, operatorFile, systemCreds := l.File(signingKeyEnv), l.File(operatorKeyEnv), l.File(systemCredsEnv)
	if err := l.Err(); err != nil {
		return err
	}
	if signingFile == "" || operatorFile == "" || systemCreds == "" {
		return errNoRevocation
	}
	m, err := a.minter(ctx, e, signingFile)
	if err != nil {
		return err
	}
	operatorKey, err := natsauth.ReadSeed(operatorFile)
	if err != nil {
		return fmt.Errorf("%s: %w", operatorKeyEnv, err)
	}
	user, err := natsauth.StoreUserKey(m.SigningKey, a.ns, tenant)
	if err != nil {
		return err
	}
	pub, _ := user.PublicKey()
	sys, err := a.dial(nats.UserCredentials(systemCreds), nats.MaxReconnects(0))
	if err != nil {
		return fmt.Errorf("connect to NATS as the system account (%s): %w", systemCredsEnv, err)
	}
	defer sys.Close()
	if err := natsauth.Revoke(ctx, sys, operatorKey, m.Account, pub); err != nil {
		return fmt.Errorf("revoke %s's credentials: %w", tenant, err)
	}
	return nil
}
