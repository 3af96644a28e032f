package hipersim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hipersim"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    func(hipersim.Config) bool
		wantErr string // the variable the error must name
	}{
		{name: "nothing set", env: nil, want: func(c hipersim.Config) bool {
			return len(c.Keys) == 0 && c.Seed == "" && c.TokenTTL == 0 && c.Batch == 0 && c.ProcessingDelay == 0
		}},
		{name: "everything set", env: map[string]string{
			"HIPER_SIM_KEYS":             hipersim.DemoKey + ", " + otherKey,
			"HIPER_SIM_SEED":             "empty",
			"HIPER_SIM_TOKEN_TTL":        "90m",
			"HIPER_SIM_BATCH":            "100",
			"HIPER_SIM_PROCESSING_DELAY": "250ms",
		}, want: func(c hipersim.Config) bool {
			return len(c.Keys) == 2 && c.Keys[1] == otherKey && c.Seed == "empty" && c.TokenTTL == 90*time.Minute &&
				c.Batch == 100 && c.ProcessingDelay == 250*time.Millisecond
		}},
		{name: "zero delay means at once", env: map[string]string{"HIPER_SIM_PROCESSING_DELAY": "0"},
			want: func(c hipersim.Config) bool { return c.ProcessingDelay < 0 }},
		{name: "short key", env: map[string]string{"HIPER_SIM_KEYS": "abc123"}, wantErr: "HIPER_SIM_KEYS"},
		{name: "key not hex", env: map[string]string{"HIPER_SIM_KEYS": strings.Repeat("g", 64)}, wantErr: "HIPER_SIM_KEYS"},
		{name: "repeated key", env: map[string]string{"HIPER_SIM_KEYS": otherKey + "," + otherKey}, wantErr: "HIPER_SIM_KEYS"},
		{name: "only commas", env: map[string]string{"HIPER_SIM_KEYS": " , "}, wantErr: "HIPER_SIM_KEYS"},
		{name: "unknown seed", env: map[string]string{"HIPER_SIM_SEED": "full"}, wantErr: "HIPER_SIM_SEED"},
		{name: "TTL without unit", env: map[string]string{"HIPER_SIM_TOKEN_TTL": "6"}, wantErr: "HIPER_SIM_TOKEN_TTL"},
		{name: "negative TTL", env: map[string]string{"HIPER_SIM_TOKEN_TTL": "-1h"}, wantErr: "HIPER_SIM_TOKEN_TTL"},
		{name: "batch not a number", env: map[string]string{"HIPER_SIM_BATCH": "lots"}, wantErr: "HIPER_SIM_BATCH"},
		{name: "batch zero", env: map[string]string{"HIPER_SIM_BATCH": "0"}, wantErr: "HIPER_SIM_BATCH"},
		{name: "delay malformed", env: map[string]string{"HIPER_SIM_PROCESSING_DELAY": "soon"}, wantErr: "HIPER_SIM_PROCESSING_DELAY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := hipersim.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(cfg) {
				t.Errorf("config %+v", cfg)
			}
			if _, err := hipersim.New(cfg); err != nil {
				t.Errorf("New refuses the config read from the environment: %v", err)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]hipersim.Config{
		"malformed key":  {Keys: []string{"nope"}},
		"unknown seed":   {Seed: "full"},
		"negative batch": {Batch: -1},
		"negative TTL":   {TokenTTL: -time.Second},
	} {
		if _, err := hipersim.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
