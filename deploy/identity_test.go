package deploy

import (
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// issuerSecret holds the keys the console mints and revokes stores' NATS
// credentials with, as the files issuerFiles name.
const issuerSecret = "hipersync-nats-issuer"

// issuerFiles are the variables naming those files (pkg/natsauth's
// SigningKeyEnv, OperatorKeyEnv, SystemCredsEnv): the console's alone.
var issuerFiles = []string{"HIPERSYNC_NATS_SIGNING_KEY", "HIPERSYNC_NATS_OPERATOR_KEY", "HIPERSYNC_NATS_SYSTEM_CREDS"}

// identityFiles are the variables naming each production service's
// credentials, all files on mounted Secrets: its NATS user, and its side
// of mutual TLS with token-broker; for the console also the keys that mint
// stores' credentials.
func identityFiles(service string) []string {
	vars := []string{"NATS_CREDS"}
	switch service {
	case "token-broker":
		return append(vars, "GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CLIENT_CA")
	case "console":
		vars = append(vars, issuerFiles...)
	}
	return append(vars, "TOKEN_BROKER_TLS_CA", "TOKEN_BROKER_TLS_CERT", "TOKEN_BROKER_TLS_KEY")
}

// checkIdentities: in production every service reaches NATS with its own
// creds and token-broker over mutual TLS with its own certificate (Secret
// <service>-tls, mounted read-only), and nothing runs insecure.
func checkIdentities(m *manifest, report reporter) {
	if cm := named(m.configMaps, "hipersync-config"); cm != nil {
		if _, ok := cm.Data["HIPERSYNC_INSECURE"]; ok {
			report("hipersync-config: HIPERSYNC_INSECURE is set: production never runs without TLS")
		}
	}
	for _, name := range services {
		d := named(m.deployments, name)
		if d == nil {
			continue
		}
		spec := d.Spec.Template.Spec
		secretOf := map[string]string{}
		for _, v := range spec.Volumes {
			if v.Secret == nil {
				continue
			}
			secretOf[v.Name] = v.Secret.SecretName
			// Minting is optional: a console without the Secret starts, and
			// answers FAILED_PRECONDITION naming the missing file.
			if v.Secret.SecretName == issuerSecret && (v.Secret.Optional == nil || !*v.Secret.Optional) {
				report("%s: Secret %s is not optional: without it the console would not start", name, issuerSecret)
			}
		}
		for _, c := range spec.Containers {
			where := name + ": container " + c.Name
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if e.Name == "HIPERSYNC_INSECURE" {
					report("%s: HIPERSYNC_INSECURE is set: production never runs without TLS", where)
				}
			}
			for _, v := range issuerFiles {
				if _, ok := env[v]; ok && name != "console" {
					report("%s: gets %s, which only the console needs", where, v)
				}
			}
			for _, v := range identityFiles(name) {
				file, ok := env[v]
				if !ok {
					report("%s: does not get %s", where, v)
					continue
				}
				secret := mountedSecret(c, secretOf, file)
				switch {
				case secret == "":
					report("%s: %s=%s is not on a read-only Secret volume", where, v, file)
				case slices.Contains(issuerFiles, v):
					if secret != issuerSecret {
						report("%s: %s is on Secret %s, not %s", where, v, secret, issuerSecret)
					}
				case v != "NATS_CREDS" && secret != name+"-tls":
					report("%s: mounts Secret %s as its certificate, not %s-tls", name, secret, name)
				}
			}
		}
	}
}

// mountedSecret is the Secret whose read-only mount holds file, or "".
func mountedSecret(c corev1.Container, secretOf map[string]string, file string) string {
	for _, vm := range c.VolumeMounts {
		if secret, ok := secretOf[vm.Name]; ok && vm.ReadOnly && strings.HasPrefix(path.Clean(file), path.Clean(vm.MountPath)+"/") {
			return secret
		}
	}
	return ""
}
