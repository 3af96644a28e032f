package console

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/natsauth"
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

// A signing key file that is there but holds no key is a mistake to stop
// at; one not there at all (an optional Secret not created) is not
// (admin's TestStoreKeyGetsOnlyItsOwnNATSCredentials).
func TestRefusesToStartWithAWrongSigningKeyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "signing-key")
	if err := os.WriteFile(file, []byte("not a seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Main(context.Background(), nil, config.Map(map[string]string{"NATS_URL": "nats://127.0.0.1:1",
		natsauth.SigningKeyEnv: file}), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), natsauth.SigningKeyEnv) {
		t.Fatalf("Main with a signing key file holding no key = %v; want a refusal naming %s", err, natsauth.SigningKeyEnv)
	}
}
