package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"connectrpc.com/connect"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/console/auth"
)

// startConsole starts services/console as its own process, as deployed:
// under the services' NATS user, with the admin identity towards
// token-broker and an operator API key from a key file. It waits until the
// console is ready and checks that an operator's call lists tenantID.
func (s *system) startConsole(ctx context.Context, t *testing.T, tenantID string) {
	t.Helper()
	key, line, err := auth.NewAPIKey("operator", "e2e-operator")
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(keys, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr, consoleAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	env := map[string]string{"HTTP_ADDR": httpAddr, "CONSOLE_ADDR": consoleAddr, "HIPERSYNC_API_KEYS_FILE": keys}
	for k, v := range s.env {
		env[k] = v
	}
	p := start(t, s.bin, "console", env)
	s.services["console"] = p
	waitReady(t, p, "http://"+httpAddr+"/readyz")

	bearer := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+key)
			return next(ctx, req)
		}
	})
	operator := adminv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+consoleAddr, connect.WithInterceptors(bearer))
	resp, err := operator.ListTenants(ctx, &adminv1.ListTenantsRequest{})
	if err != nil {
		t.Fatalf("ListTenants through the console: %v\n%s", err, tail(p.log))
	}
	var ids []string
	for _, tn := range resp.GetTenants() {
		ids = append(ids, tn.GetTenantId())
	}
	if len(ids) != 1 || ids[0] != tenantID {
		t.Fatalf("the console lists tenants %v; want %s", ids, tenantID)
	}
	// Without the key, nothing.
	anonymous := adminv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+consoleAddr)
	if _, err := anonymous.ListTenants(ctx, &adminv1.ListTenantsRequest{}); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("ListTenants without a key = %v; want unauthenticated", err)
	}
}
