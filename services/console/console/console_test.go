package console

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/services/console/auth"
)

// Secure by default: without API keys or an OIDC issuer the binary does not
// start (and says how to configure one).
func TestRefusesToStartWithoutAuthentication(t *testing.T) {
	err := Main(context.Background(), nil, config.Map(map[string]string{"NATS_URL": "nats://127.0.0.1:1"}), nil, &bytes.Buffer{})
	if !errors.Is(err, auth.ErrNoAuth) {
		t.Fatalf("Main without authentication = %v; want ErrNoAuth", err)
	}
}

func TestNewKeyPrintsTheKeyAndItsHashedLine(t *testing.T) {
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"new-key", "store:acme", "acme-backend"}, config.Map(nil), nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), auth.APIKeyPrefix) || !strings.Contains(out.String(), "sha256:") || !strings.Contains(out.String(), "store:acme acme-backend") {
		t.Fatalf("new-key printed:\n%s", out.String())
	}
	if err := Main(context.Background(), []string{"new-key", "admin", "x"}, config.Map(nil), nil, &out); err == nil {
		t.Fatal("new-key accepted the role admin")
	}
}
