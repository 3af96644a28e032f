package natsauth

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hipersync/hipersync/pkg/events"
)

// natsCLI is the official nats CLI pinned in tools/go.mod
// (github.com/nats-io/natscli): $NATS_CLI, or bin/tools/nats, which `make
// test` builds (make natscli); built here into bin/tools when missing.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NATS_CLI"); p != "" {
		return p
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "tools", "nats")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/natscli/nats")
	cmd.Dir = filepath.Join(root, "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the nats CLI (tools/go.mod): %v\n%s", err, out)
	}
	return bin
}

// The same isolation, seen with the official nats CLI and a store's .creds
// file, as a store platform's developer would check it.
func TestNATSCLIWithAStoresCredentials(t *testing.T) {
	t.Parallel()
	cli := natsCLI(t)
	s := startIsolation(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	creds, user, err := s.op.Minter().Issue(ctx, "acme", time.Hour, s.dial)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "acme.creds")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		args = append([]string{"--server", s.url, "--creds", file, "--inbox-prefix", InboxPrefix(s.ns, "acme"), "--timeout", "2s"}, args...)
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	stored := func(subject string) bool {
		t.Helper()
		msg, err := s.js.Stream(ctx, s.ns.Stream(events.StreamStore))
		if err != nil {
			t.Fatal(err)
		}
		_, err = msg.GetLastMsgForSubject(ctx, subject)
		return err == nil
	}

	own := s.ns.StoreSubject("acme", events.KindOrderApproved)
	if out, err := run("pub", "--jetstream", own, `{"orderId":"cli-1"}`); err != nil || !stored(own) {
		t.Fatalf("nats pub --jetstream of its own order: %v\n%s", err, out)
	}
	refusals := map[string][]string{
		"publish another store's order":     {"pub", "--jetstream", s.ns.StoreSubject("globex", events.KindOrderApproved), `{"orderId":"cli-2"}`},
		"subscribe to another store":        {"sub", s.ns.HiperSubject("globex", ">"), "--count", "1"},
		"read the tenants bucket":           {"kv", "get", s.ns.Bucket("tenants"), "acme"},
		"list the streams":                  {"stream", "ls"},
		"add an unfiltered consumer":        {"consumer", "add", s.ns.Stream(events.StreamHiper), "acme", "--pull", "--defaults"},
		"add a consumer on another store's": {"consumer", "add", s.ns.Stream(events.StreamHiper), "acme", "--pull", "--defaults", "--filter", s.ns.HiperSubject("globex", ">")},
	}
	for what, args := range refusals {
		out, err := run(args...)
		t.Logf("%s: %v: %s", what, err, strings.TrimSpace(out))
		if err == nil {
			t.Errorf("%s: nats %s succeeded:\n%s", what, strings.Join(args, " "), out)
			continue
		}
		if !strings.Contains(strings.ToLower(out), "permissions violation") {
			t.Errorf("%s: want a permissions violation, got %v:\n%s", what, err, out)
		}
	}
	if stored(s.ns.StoreSubject("globex", events.KindOrderApproved)) {
		t.Fatal("another store's order was stored")
	}

	// Revoked, the credentials no longer connect.
	sys, err := nats.Connect(s.url, nats.UserCredentials(s.op.Path(SystemCredsFile)))
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if err := Revoke(ctx, sys, s.op.Operator, s.op.AccountPub, user); err != nil {
		t.Fatal(err)
	}
	if out, err := run("pub", own, "{}"); err == nil || !strings.Contains(strings.ToLower(out), "authorization violation") {
		t.Fatalf("a revoked credential: want an authorization violation, got %v:\n%s", err, out)
	}
}
