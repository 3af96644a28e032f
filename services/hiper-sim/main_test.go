package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hipersim"
)

// logLines hands each log line run writes to the test as it is written.
type logLines chan map[string]any

func (l logLines) Write(p []byte) (int, error) {
	var line map[string]any
	if err := json.Unmarshal(p, &line); err != nil {
		line = map[string]any{"unparsed": string(p)}
	}
	l <- line
	return len(p), nil
}

func (l logLines) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case line := <-l:
		return line
	case <-time.After(10 * time.Second):
		t.Fatal("no log line within 10s")
		return nil
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         map[string]string
		key         string
		wantDemoKey bool
	}{
		{"demo key", map[string]string{}, hipersim.DemoKey, true},
		{"configured key", map[string]string{"HIPER_SIM_KEYS": strings.Repeat("ab", 32), "HIPER_SIM_SEED": "empty"}, strings.Repeat("ab", 32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.env["HIPER_SIM_ADDR"] = "127.0.0.1:0"
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := make(logLines, 8)
			done := make(chan error, 1)
			go func() { done <- run(ctx, func(k string) string { return tt.env[k] }, logs) }()

			started := logs.next(t)
			api, _ := started["api"].(string)
			if started["msg"] != "hiper-sim listening" || !strings.HasSuffix(api, "/api/v1") {
				t.Fatalf("first log line %v", started)
			}
			if _, printed := started["demo_key"]; printed != tt.wantDemoKey {
				t.Errorf("demo_key printed: %v, want %v", printed, tt.wantDemoKey)
			}
			resp, err := http.Get(api + "/auth/gerar-token/" + tt.key)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("token: status %d", resp.StatusCode)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return after cancel")
			}
		})
	}
}

func TestRunRejectsMalformedEnv(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"HIPER_SIM_ADDR":             {"HIPER_SIM_ADDR": "nowhere"},
		"HIPER_SIM_KEYS":             {"HIPER_SIM_KEYS": "short"},
		"HIPER_SIM_SEED":             {"HIPER_SIM_SEED": "lots"},
		"HIPER_SIM_TOKEN_TTL":        {"HIPER_SIM_TOKEN_TTL": "forever"},
		"HIPER_SIM_BATCH":            {"HIPER_SIM_BATCH": "-5"},
		"HIPER_SIM_PROCESSING_DELAY": {"HIPER_SIM_PROCESSING_DELAY": "later"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), func(k string) string { return env[k] }, make(logLines, 8))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("error %v, want one naming %s", err, name)
			}
		})
	}
}
