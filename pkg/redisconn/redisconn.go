// Package redisconn opens the Redis client every hipersync process uses from
// REDIS_URL and REDIS_TLS_CA: one server, a Sentinel-managed primary or a
// Redis Cluster, all behind go-redis' UniversalClient.
//
//	redis://[user:pass@]host:6379/0                               one server
//	redis://[user:pass@]sentinel1:26379?master_name=mymaster&addr=sentinel2:26379
//	                                                              Sentinel: the primary named master_name
//	redis://[user:pass@]node1:6379?addr=node2:6379&addr=node3:6379  Cluster: more than one addr, no master_name
//	redis://node1:6379?cluster=true                               Cluster through one seed node
//
// rediss:// is the same over TLS, checked against the system's roots or,
// when REDIS_TLS_CA names a PEM file, against those certificates.
package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hipersync/hipersync/pkg/config"
)

// Mode is how a REDIS_URL reaches Redis.
type Mode string

// The modes of a REDIS_URL.
const (
	Single   Mode = "single"
	Sentinel Mode = "sentinel"
	Cluster  Mode = "cluster"
)

// ModeOf tells which kind of deployment rawURL names.
func ModeOf(rawURL string) (Mode, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	switch {
	case q.Get("master_name") != "":
		return Sentinel, nil
	case q.Get("cluster") == "true" || len(q["addr"]) > 0:
		return Cluster, nil
	}
	return Single, nil
}

// Open returns a client for rawURL (REDIS_URL); caFile (REDIS_TLS_CA), when
// set, holds the PEM certificates a rediss:// server must chain to.
func Open(rawURL, caFile string) (redis.UniversalClient, error) {
	mode, err := ModeOf(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %s: %w", config.RedactURL(rawURL), err)
	}
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_TLS_CA: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("REDIS_TLS_CA: no PEM certificate in %s", caFile)
		}
		if !strings.HasPrefix(rawURL, "rediss://") {
			return nil, fmt.Errorf("REDIS_TLS_CA is set but REDIS_URL is not rediss:// (TLS)")
		}
	}
	withRoots := func(c *tls.Config) *tls.Config {
		if c != nil && roots != nil {
			c.RootCAs = roots
		}
		return c
	}
	bad := func(err error) error { return fmt.Errorf("REDIS_URL %s: %w", config.RedactURL(rawURL), err) }
	switch mode {
	case Sentinel:
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, bad(err)
		}
		o.TLSConfig = withRoots(o.TLSConfig)
		return redis.NewFailoverClient(o), nil
	case Cluster:
		u, _ := url.Parse(rawURL)
		q := u.Query()
		q.Del("cluster") // ours, not go-redis'
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, bad(err)
		}
		o.TLSConfig = withRoots(o.TLSConfig)
		return redis.NewClusterClient(o), nil
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, bad(err)
	}
	o.TLSConfig = withRoots(o.TLSConfig)
	return redis.NewClient(o), nil
}
