package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The overlays, by the directory under k8s/overlays.
const (
	dev  = "dev"
	prod = "prod"
)

// manifest is one overlay rendered and decoded into the Kubernetes API
// types.
type manifest struct {
	overlay         string
	deployments     []*appsv1.Deployment
	statefulSets    []*appsv1.StatefulSet
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	endpointSlices  []*discoveryv1.EndpointSlice
	budgets         []*policyv1.PodDisruptionBudget
	autoscalers     []*autoscalingv2.HorizontalPodAutoscaler
	networkPolicies []*networkingv1.NetworkPolicy
}

// decoder decodes strictly: a field the API type does not have, a field
// given twice or a value of the wrong type is an error, as the API server's
// strict field validation would make it.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
		networkingv1.AddToScheme, discoveryv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// render builds overlay from the tree in fsys (rooted where k8s/ is) and
// decodes every object. An object of a kind the rules do not know is an
// error: the rules could not vouch for it.
func render(fsys filesys.FileSystem, overlay string) (*manifest, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(fsys, filepath.Join("k8s", "overlays", overlay))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", overlay, err)
	}
	m := &manifest{overlay: overlay}
	for _, res := range resources.Resources() {
		data, err := res.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", overlay, res.CurId(), err)
		}
		obj, _, err := decoder.Decode(data, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: decode %s strictly: %w", overlay, res.CurId(), err)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		case *appsv1.StatefulSet:
			m.statefulSets = append(m.statefulSets, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, o)
		case *corev1.Secret:
			m.secrets = append(m.secrets, o)
		case *discoveryv1.EndpointSlice:
			m.endpointSlices = append(m.endpointSlices, o)
		case *policyv1.PodDisruptionBudget:
			m.budgets = append(m.budgets, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.autoscalers = append(m.autoscalers, o)
		case *networkingv1.NetworkPolicy:
			m.networkPolicies = append(m.networkPolicies, o)
		default:
			return nil, fmt.Errorf("%s: %s: no rule covers kind %T; teach deploy/rules_test.go about it", overlay, res.CurId(), obj)
		}
	}
	return m, nil
}

func TestOverlaysFollowTheRules(t *testing.T) {
	t.Parallel()
	for _, overlay := range []string{dev, prod} {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			m, err := render(filesys.MakeFsOnDisk(), overlay)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range check(m) {
				t.Error(p)
			}
		})
	}
}

// TestRulesCatchBrokenManifests breaks the manifests in memory, one way at a
// time, and expects the rules to name each break: a rule that cannot fail
// guards nothing.
func TestRulesCatchBrokenManifests(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		overlay string
		file    string
		old     string
		new     string
		want    string
	}{
		{"unknown field", prod, "k8s/base/stock-poller.yaml",
			"      enableServiceLinks: false", "      enableServiceLinks: false\n      restartPolicyy: Always", `unknown field "spec.template.spec.restartPolicyy"`},
		{"latest tag", dev, "k8s/base/kustomization.yaml",
			"newName: ghcr.io/hipersync/stock-poller\n    newTag: \"0.1.0\"", "newName: ghcr.io/hipersync/stock-poller\n    newTag: latest", "stock-poller: image ghcr.io/hipersync/stock-poller:latest"},
		{"writable root", prod, "k8s/base/order-forwarder.yaml",
			"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "order-forwarder: container order-forwarder: root filesystem is writable"},
		{"capability kept", dev, "k8s/base/invoice-watcher.yaml",
			`drop: ["ALL"]`, `drop: ["NET_RAW"]`, "invoice-watcher: container invoice-watcher: capabilities not dropped"},
		{"no memory limit", prod, "k8s/base/catalog-poller.yaml",
			"              memory: 512Mi\n", "", "catalog-poller: container catalog-poller: no memory limit"},
		{"grpc probe on token-broker", prod, "k8s/base/token-broker.yaml",
			"            httpGet:\n              path: /healthz\n              port: http-metrics\n            initialDelaySeconds", "            grpc:\n              port: 9090\n            initialDelaySeconds", "token-broker: container token-broker: liveness probe is not HTTP GET /healthz"},
		{"insecure in prod", prod, "k8s/overlays/prod/kustomization.yaml",
			"        path: /data/HIPERSYNC_STREAM_REPLICAS\n        value: \"3\"", "        path: /data/HIPERSYNC_STREAM_REPLICAS\n        value: \"3\"\n      - op: add\n        path: /data/HIPERSYNC_INSECURE\n        value: \"1\"", "hipersync-config: HIPERSYNC_INSECURE"},
		{"a service with another's certificate", prod, "k8s/overlays/prod/kustomization.yaml",
			"                  secretName: order-forwarder-tls", "                  secretName: token-broker-tls", "order-forwarder: mounts Secret token-broker-tls as its certificate, not order-forwarder-tls"},
		{"token-broker without client CA", prod, "k8s/overlays/prod/kustomization.yaml",
			"                - name: GRPC_TLS_CLIENT_CA", "                - name: GRPC_REFLECTION", "token-broker: container token-broker: does not get GRPC_TLS_CLIENT_CA"},
		{"console cannot mint", prod, "k8s/overlays/prod/kustomization.yaml",
			"                - name: HIPERSYNC_NATS_SIGNING_KEY", "                - name: HIPERSYNC_NATS_SIGNING_KEYS", "console: container console: does not get HIPERSYNC_NATS_SIGNING_KEY"},
		{"signing key required to start", prod, "k8s/overlays/prod/kustomization.yaml",
			"                  secretName: hipersync-nats-issuer\n                  defaultMode: 0440\n                  optional: true", "                  secretName: hipersync-nats-issuer\n                  defaultMode: 0440",
			"console: Secret hipersync-nats-issuer is not optional"},
		{"signing key inlined", prod, "k8s/overlays/prod/kustomization.yaml",
			"                  value: /etc/hipersync/nats-issuer/signing-key", "                  value: SUAEXAMPLE", "console: container console: HIPERSYNC_NATS_SIGNING_KEY=SUAEXAMPLE is not on a read-only Secret volume"},
		{"no NATS identity", prod, "k8s/overlays/prod/kustomization.yaml",
			"                - name: NATS_CREDS", "                - name: NATS_CREDZ", "does not get NATS_CREDS"},
		{"short grace", prod, "k8s/base/invoice-watcher.yaml",
			"terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20", "invoice-watcher: terminationGracePeriodSeconds 20"},
		{"grace without a call's budget", prod, "k8s/base/order-forwarder.yaml",
			"terminationGracePeriodSeconds: 70", "terminationGracePeriodSeconds: 45", "order-forwarder: terminationGracePeriodSeconds 45"},
		{"slower Hiper, same grace", dev, "k8s/base/order-forwarder.yaml",
			"            - name: GOMEMLIMIT\n", "            - name: ORDER_HIPER_TIMEOUT\n              value: 30s\n            - name: GOMEMLIMIT\n",
			"order-forwarder: terminationGracePeriodSeconds 70 is shorter than its preStop pause (0s), stop (1m35s)"},
		{"inlined master key", dev, "k8s/base/token-broker.yaml",
			"            - name: HIPERSYNC_MASTER_KEY\n              valueFrom:\n                secretKeyRef:\n                  name: hipersync-master-key\n                  key: key",
			"            - name: HIPERSYNC_MASTER_KEY\n              value: c2VjcmV0", "token-broker: container token-broker: HIPERSYNC_MASTER_KEY is inlined"},
		{"one replica", prod, "k8s/overlays/prod/kustomization.yaml",
			"  - name: stock-poller\n    count: 2", "  - name: stock-poller\n    count: 1", "stock-poller: 1 replicas"},
		{"no budget", prod, "k8s/overlays/prod/disruption-budgets.yaml",
			"      app.kubernetes.io/name: invoice-watcher", "      app.kubernetes.io/name: invoice-watcherr", "invoice-watcher: no PodDisruptionBudget"},
		{"no spread", prod, "k8s/overlays/prod/kustomization.yaml",
			"            topologyKey: kubernetes.io/hostname", "            topologyKey: example.com/rack", "token-broker: replicas not spread over nodes"},
		{"workers reach redis", prod, "k8s/overlays/prod/network-policies.yaml",
			"            cidr: 10.10.1.10/32\n      ports:\n        - protocol: TCP\n          port: 6379",
			"            cidr: 10.10.1.10/32\n      ports:\n        - protocol: TCP\n          port: 6379\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: leak\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.10.1.10/32",
			"order-forwarder may reach redis (10.10.1.10:6379/TCP)"},
		{"nats server not allowed", prod, "k8s/overlays/prod/external-services.yaml",
			`  - addresses: ["10.10.0.13"]`, "  - addresses: [\"10.10.0.13\"]\n  - addresses: [\"10.10.0.14\"]", "catalog-poller cannot reach nats (10.10.0.14:4222/TCP)"},
		{"no autoscaler", prod, "k8s/overlays/prod/autoscaling.yaml",
			"    name: order-forwarder\n  minReplicas", "    name: stock-poller\n  minReplicas", "order-forwarder: no HorizontalPodAutoscaler"},
		{"service without deployment", dev, "k8s/base/invoice-watcher.yaml",
			"  selector:\n    app.kubernetes.io/name: invoice-watcher\n  ports:", "  selector:\n    app.kubernetes.io/name: invoice-watch\n  ports:", "invoice-watcher: Service selects no pod of the Deployment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := copyTree(t, "k8s")
			data, err := fsys.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tt.old) {
				t.Fatalf("%s no longer holds %q: update this case", tt.file, tt.old)
			}
			if err := fsys.WriteFile(tt.file, []byte(strings.Replace(string(data), tt.old, tt.new, 1))); err != nil {
				t.Fatal(err)
			}
			var problems []string
			m, err := render(fsys, tt.overlay)
			if err != nil {
				problems = []string{err.Error()}
			} else {
				problems = check(m)
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("want a problem saying %q, got:\n%s", tt.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// copyTree copies dir of the working tree into an in-memory file system.
func copyTree(t *testing.T, dir string) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(path, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}
