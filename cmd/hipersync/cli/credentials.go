package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/tenant"
)

const credentialsUsage = `usage:
  hipersync tenant credentials <tenant> [--out FILE] [--expires D]
  hipersync tenant credentials <tenant> --revoke`

func (a *app) credentialsCmd() *cobra.Command {
	c := &cobra.Command{Use: "credentials <tenant>", Short: "mint a store's NATS credentials (.creds), or revoke them all",
		Long: "mint a store's NATS credentials (.creds), or revoke them all\n\n" + credentialsUsage}
	var f credentialsFlags
	fs := c.Flags()
	fs.StringVar(&f.out, "out", "", "write the .creds file here (mode 0600) instead of stdout")
	fs.DurationVar(&f.expires, "expires", 90*24*time.Hour, "how long the credentials are valid; 0 never expires")
	fs.BoolVar(&f.revoke, "revoke", false, "revoke every credential issued to the store so far")
	c.RunE = func(_ *cobra.Command, pos []string) error { return a.runCredentials(pos, f, a.asJSON) }
	return c
}

// credentialsFlags are the flags of `tenant credentials`.
type credentialsFlags struct {
	out     string
	expires time.Duration
	revoke  bool
}

// runCredentials mints a store's NATS credentials, or revokes them all,
// through the admin API (the console's signing key, or the CLI's own in
// its in-process handler: HIPERSYNC_NATS_SIGNING_KEY and the rest).
func (a *app) runCredentials(pos []string, f credentialsFlags, asJSON bool) error {
	ctx, e := a.ctx, a.e
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
	c, err := a.admin(needs{})
	if err != nil {
		return err
	}
	defer c.Close()
	if *revoke {
		if _, err := c.RevokeTenantCredentials(ctx, &adminv1.RevokeTenantCredentialsRequest{TenantId: tenantID}); err != nil {
			return apiError(err)
		}
		if asJSON {
			return writeJSON(e.Stdout, map[string]any{"tenant": tenantID, "revoked": true})
		}
		fmt.Fprintf(e.Stdout, "every credential issued to %s so far is revoked; mint new ones with `hipersync tenant credentials %s`\n", tenantID, tenantID)
		return nil
	}
	resp, err := c.GetTenantCredentials(ctx, &adminv1.GetTenantCredentialsRequest{TenantId: tenantID,
		Expires: durationpb.New(*expires), NeverExpires: *expires == 0})
	if err != nil {
		return apiError(err)
	}
	if *out == "" {
		_, err := io.WriteString(e.Stdout, resp.GetCreds())
		return err
	}
	if err := os.WriteFile(*out, []byte(resp.GetCreds()), 0o600); err != nil {
		return fmt.Errorf("write the credentials: %w", err)
	}
	expiresAt := "never"
	if resp.GetExpiresAt() != nil {
		expiresAt = resp.GetExpiresAt().AsTime().UTC().Format(time.RFC3339)
	}
	pub, sub, inbox := resp.GetPublishSubject(), resp.GetSubscribeSubject(), resp.GetInboxPrefix()
	if asJSON {
		return writeJSON(e.Stdout, map[string]any{"tenant": tenantID, "file": *out, "user": resp.GetUser(), "expires": expiresAt,
			"inbox_prefix": inbox, "publish": pub, "subscribe": sub, "consumer": tenantID})
	}
	fmt.Fprintf(e.Stdout, `wrote %s for store %s (user %s, expires %s)
It may publish %s, subscribe to %s, and read the HIPER stream
through a durable consumer named %q filtered inside %s.
Its client must use the inbox prefix %s
(nats.go: nats.CustomInboxPrefix; nats CLI: --inbox-prefix).
`, *out, tenantID, resp.GetUser(), expiresAt, pub, sub, tenantID, sub, inbox)
	return nil
}

// revokeAfterDisconnect ends a disconnected store's NATS credentials too,
// or says they live on where the deployment cannot revoke them.
func revokeAfterDisconnect(ctx context.Context, e Env, c *adminAPI, id string) error {
	_, err := c.RevokeTenantCredentials(ctx, &adminv1.RevokeTenantCredentialsRequest{TenantId: id})
	var ce *connect.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce) && strings.Contains(ce.Message(), natsauth.ErrNoRevocation.Error()):
		fmt.Fprintf(e.Stderr, "note: %s's NATS credentials stay valid until they expire (%s)\n", id, ce.Message())
		return nil
	}
	return fmt.Errorf("disconnected, but %w", apiError(err))
}
