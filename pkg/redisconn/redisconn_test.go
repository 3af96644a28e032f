package redisconn

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hipersync/hipersync/pkg/testkit"
)

func TestModes(t *testing.T) {
	for url, want := range map[string]Mode{
		"redis://127.0.0.1:6379/0":                            Single,
		"rediss://user:pw@redis:6380/1":                       Single,
		"redis://s1:26379?master_name=mymaster&addr=s2:26379": Sentinel,
		"redis://n1:6379?addr=n2:6379&addr=n3:6379":           Cluster,
		"redis://n1:6379?cluster=true":                        Cluster,
	} {
		got, err := ModeOf(url)
		if err != nil || got != want {
			t.Errorf("%s: %s, %v; want %s", url, got, err, want)
		}
		c, err := Open(url, "")
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		switch c.(type) {
		case *redis.Client:
			if want == Cluster {
				t.Errorf("%s: a single-node client", url)
			}
		case *redis.ClusterClient:
			if want != Cluster {
				t.Errorf("%s: a cluster client", url)
			}
		}
		_ = c.Close()
	}
}

func TestCustomCA(t *testing.T) {
	if _, err := Open("rediss://redis:6380", filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("a missing CA file was accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := Open("rediss://redis:6380", bad); err == nil {
		t.Error("a CA file without a certificate was accepted")
	}
}

// The machine's Redis answers through a plain URL.
func TestSingleAnswers(t *testing.T) {
	url := testkit.RedisURL()
	c, err := Open(url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}
