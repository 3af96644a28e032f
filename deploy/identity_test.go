package deploy

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// identityFiles are the variables naming each production service's
// credentials, all files on mounted Secrets: its NATS user, and its side
// of mutual TLS with token-broker.
func identityFiles(service string) []string {
	vars := []string{"NATS_CREDS"}
	if service == "token-broker" {
		return append(vars, "GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CLIENT_CA")
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
			if v.Secret != nil {
				secretOf[v.Name] = v.Secret.SecretName
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
