package admin_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	"github.com/hipersync/hipersync/services/console/admin"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// A refusal reaches a real client, over Connect and over gRPC, with its
// stable code and Portuguese text beside the connect code and the English
// message it always had.
func TestRefusalsCarryACodeAndPortugueseText(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type call func(adminv1connect.AdminServiceClient) error
	cases := []struct {
		name    string
		key     string
		call    call
		code    connect.Code
		reason  string
		english string
		text    string
	}{
		{"another store", c.StoreKeys["acme"], func(a adminv1connect.AdminServiceClient) error {
			_, err := a.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "beta"})
			return err
		}, connect.CodePermissionDenied, "tenant_forbidden", `may not reach tenant "beta"`, "sua própria loja"},
		{"an operator's call", c.StoreKeys["acme"], func(a adminv1connect.AdminServiceClient) error {
			_, err := a.GetStreamUsage(ctx, &adminv1.GetStreamUsageRequest{})
			return err
		}, connect.CodePermissionDenied, "operators_only", "operators only", "Só um operador"},
		{"no tenant", c.OperatorKey, func(a adminv1connect.AdminServiceClient) error {
			_, err := a.GetTenant(ctx, &adminv1.GetTenantRequest{})
			return err
		}, connect.CodeInvalidArgument, "tenant_required", "tenant_id is required", "Informe a loja"},
		{"nothing held", c.OperatorKey, func(a adminv1connect.AdminServiceClient) error {
			_, err := a.ApproveHeldChange(ctx, &adminv1.ApproveHeldChangeRequest{TenantId: "acme"})
			return err
		}, connect.CodeFailedPrecondition, "nothing_held", "nothing of acme is held", "Não há alteração retida"},
		{"a wrong key", "hsk_not-a-key", func(a adminv1connect.AdminServiceClient) error {
			_, err := a.ListTenants(ctx, &adminv1.ListTenantsRequest{})
			return err
		}, connect.CodeUnauthenticated, "unauthenticated", "unknown API key", "Chave ou token não aceito"},
	}
	for _, tc := range cases {
		for _, protocol := range []struct {
			name string
			opts []connect.ClientOption
		}{{"connect", nil}, {"grpc", []connect.ClientOption{connect.WithGRPC()}}} {
			err := tc.call(c.Client(tc.key, protocol.opts...))
			what := tc.name + " over " + protocol.name
			wantCode(t, what, err, tc.code)
			r, ok := admin.RefusalOf(err)
			if !ok || r.Code != tc.reason || !strings.Contains(r.Text, tc.text) {
				t.Errorf("%s: refusal %+v (%v); want %s and %q", what, r, ok, tc.reason, tc.text)
			}
			if !strings.Contains(err.Error(), tc.english) {
				t.Errorf("%s: message %q; want the English %q kept", what, err, tc.english)
			}
		}
	}
}

// Every code is snake_case, once, with a text, and documented where a
// support person or an API client looks it up.
func TestRefusalCodesAreDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/console.md")
	if err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := map[string]bool{}
	for _, r := range admin.Refusals() {
		if !snake.MatchString(r.Code) || seen[r.Code] || r.Text == "" {
			t.Errorf("refusal %+v: want a snake_case code, once, with a text", r)
		}
		seen[r.Code] = true
		if !strings.Contains(string(doc), "`"+r.Code+"`") || !strings.Contains(string(doc), r.Text) {
			t.Errorf("docs/console.md does not list %s with its text", r.Code)
		}
	}
}
