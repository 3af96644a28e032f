package deploy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/services/order-forwarder/forwarder"
)

// services are hipersync's deployables. hiper-sim (a stand-in for Hiper),
// NATS and Redis are held to the container rules too, but not to these.
var services = []string{"token-broker", "catalog-poller", "stock-poller", "order-forwarder", "invoice-watcher", "console"}

// Secrets the manifests reference but never hold: an operator creates them
// (docs/operations.md, "Secrets").
var externalSecrets = []string{"hipersync-master-key", "hipersync-nats", "hipersync-redis", "hipersync-console", "hipersync-nats-creds",
	issuerSecret, "token-broker-tls", "catalog-poller-tls", "stock-poller-tls", "order-forwarder-tls", "invoice-watcher-tls", "console-tls"}

// stopTime is how long each service's own code may take to stop after
// SIGTERM: the consumer loop's grace period (the pollers' schedulers wait
// less); for the order-forwarder, that grace and then a Hiper call started
// just before its end, seen through its budget and recorded
// (forwarder.StopTime, from the ORDER_HIPER_TIMEOUT the pod gets); or
// token-broker's bound on GracefulStop (broker.Main).
func stopTime(m *manifest, w workload) (time.Duration, error) {
	switch w.name {
	case "token-broker":
		return 10 * time.Second, nil
	case "order-forwarder":
		var cfg forwarder.Config
		if v := envOf(m, w, "ORDER_HIPER_TIMEOUT"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return 0, fmt.Errorf("ORDER_HIPER_TIMEOUT %q: %w", v, err)
			}
			cfg.HiperTimeout = d
		}
		return forwarder.StopTime(cfg), nil
	}
	return events.DefaultGracePeriod, nil
}

// envOf is the value of a variable in the workload's first container: its
// own env, else the ConfigMaps it takes whole (envFrom).
func envOf(m *manifest, w workload, name string) string {
	if len(w.template.Spec.Containers) == 0 {
		return ""
	}
	c := w.template.Spec.Containers[0]
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		if cm := named(m.configMaps, from.ConfigMapRef.Name); cm != nil {
			if v, ok := cm.Data[name]; ok {
				return v
			}
		}
	}
	return ""
}

// stopMargin is what follows the drain: the NATS connection's own drain and
// the trace exporter's flush.
const stopMargin = 10 * time.Second

// workload is a Deployment or StatefulSet, for the rules they share.
type workload struct {
	kind, name, namespace string
	replicas              int32
	selector              *metav1.LabelSelector
	template              corev1.PodTemplateSpec
}

func (m *manifest) workloads() []workload {
	var ws []workload
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment", d.Name, d.Namespace, replicasOf(d.Spec.Replicas), d.Spec.Selector, d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, s.Namespace, replicasOf(s.Spec.Replicas), s.Spec.Selector, s.Spec.Template})
	}
	return ws
}

// named returns the object called name, or nil.
func named[T interface{ GetName() string }](objs []T, name string) T {
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	var none T
	return none
}

func replicasOf(r *int32) int32 {
	if r == nil {
		return 1 // the API's default
	}
	return *r
}

// check applies every rule to m and returns the problems, each naming the
// overlay and the object.
func check(m *manifest) []string {
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, m.overlay+": "+fmt.Sprintf(format, args...))
	}
	for _, w := range m.workloads() {
		checkWorkload(m, w, report)
	}
	checkServices(m, report)
	checkConfig(m, report)
	switch m.overlay {
	case dev:
		checkDev(m, report)
	case prod:
		checkProd(m, report)
	}
	return problems
}

type reporter func(format string, args ...any)

func checkWorkload(m *manifest, w workload, report reporter) {
	spec := w.template.Spec
	if w.selector == nil || !selects(w.selector, w.template.Labels) {
		report("%s: selector does not select its own pods", w.name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		report("%s: mounts a service account token it does not need", w.name)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		report("%s: shares a host namespace", w.name)
	}
	if spec.TerminationGracePeriodSeconds == nil {
		report("%s: no terminationGracePeriodSeconds", w.name)
	} else if slices.Contains(services, w.name) {
		grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		stop, err := stopTime(m, w)
		if err != nil {
			report("%s: %v", w.name, err)
		}
		if need := preStopPause(spec) + stop + stopMargin; grace < need {
			report("%s: terminationGracePeriodSeconds %d is shorter than its preStop pause (%s), stop (%s) and a %s margin: want at least %s",
				w.name, *spec.TerminationGracePeriodSeconds, preStopPause(spec), stop, stopMargin, need)
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		checkContainer(m, w, c, report)
	}
}

func preStopPause(spec corev1.PodSpec) time.Duration {
	var d time.Duration
	for _, c := range spec.Containers {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			d = max(d, time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second)
		}
	}
	return d
}

func checkContainer(m *manifest, w workload, c corev1.Container, report reporter) {
	where := w.name + ": container " + c.Name
	if !pinned(c.Image) {
		report("%s: image %s is not pinned to a version (a tag other than latest, or a digest)", w.name, c.Image)
	}
	checkProbes(w, c, where, report)

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		lim, hasLim := c.Resources.Limits[r]
		if !hasReq {
			report("%s: no %s request", where, r)
		}
		if !hasLim {
			report("%s: no %s limit", where, r)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			report("%s: %s request %s above its limit %s", where, r, req.String(), lim.String())
		}
	}
	checkSecurity(w, c, where, report)
	checkEnv(m, w, c, where, report)
}

// pinned reports whether image names a version: a digest, or a tag other
// than latest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	return ok && tag != "" && tag != "latest"
}

func checkProbes(w workload, c corev1.Container, where string, report reporter) {
	if c.LivenessProbe == nil {
		report("%s: no liveness probe", where)
	}
	if c.ReadinessProbe == nil {
		report("%s: no readiness probe", where)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil || !slices.Contains(services, w.name) {
		return
	}
	// token-broker too: its gRPC requires a client certificate, which the
	// kubelet's gRPC probe cannot present.
	for kind, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		h := want.p.HTTPGet
		if h == nil || h.Path != want.path || containerPort(c, h.Port) != 8080 {
			report("%s: %s probe is not HTTP GET %s on 8080", where, kind, want.path)
		}
	}
}

// containerPort resolves a port by number or by the name of one of c's
// ports; 0 when it names none.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func checkSecurity(w workload, c corev1.Container, where string, report reporter) {
	pod := w.template.Spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	nonRoot := pod.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		report("%s: runAsNonRoot is not set", where)
	}
	user := pod.RunAsUser
	if sc.RunAsUser != nil {
		user = sc.RunAsUser
	}
	if user != nil && *user == 0 {
		report("%s: runs as user 0", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		report("%s: root filesystem is writable", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		report("%s: allowPrivilegeEscalation is not false", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		report("%s: privileged", where)
	}
	if sc.Capabilities == nil || !slices.ContainsFunc(sc.Capabilities.Drop, func(c corev1.Capability) bool { return strings.EqualFold(string(c), "ALL") }) {
		report("%s: capabilities not dropped (want drop: [ALL])", where)
	} else if len(sc.Capabilities.Add) > 0 {
		report("%s: adds capabilities %v", where, sc.Capabilities.Add)
	}
	seccomp := pod.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost {
		report("%s: no RuntimeDefault seccomp profile", where)
	}
}

// secretVars are variables that carry credentials: never a literal in a
// manifest, and each only where it is needed.
var secretVars = map[string][]string{
	"HIPERSYNC_MASTER_KEY":  {"token-broker"},
	"HIPERSYNC_SESSION_KEY": {"console"},
	"REDIS_URL":             {"token-broker"},
	"NATS_URL":              services,
}

func checkEnv(m *manifest, w workload, c corev1.Container, where string, report reporter) {
	for _, from := range c.EnvFrom {
		if ref := from.ConfigMapRef; ref != nil && named(m.configMaps, ref.Name) == nil {
			report("%s: envFrom names ConfigMap %s, which the overlay does not have", where, ref.Name)
		}
		if from.SecretRef != nil {
			report("%s: envFrom takes a whole Secret; name each variable with secretKeyRef", where)
		}
	}
	for _, e := range c.Env {
		owners, secret := secretVars[e.Name]
		// A *_TLS_KEY, and the console's signing keys, name key files, which
		// checkIdentities requires to be on a mounted Secret.
		looksSecret := strings.HasSuffix(e.Name, "_KEY") && !strings.HasSuffix(e.Name, "_TLS_KEY") && !slices.Contains(issuerFiles, e.Name) ||
			strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "SECRET")
		if (secret || looksSecret) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			report("%s: %s is inlined; reference a Secret with secretKeyRef", where, e.Name)
		}
		if secret && !slices.Contains(owners, w.name) {
			report("%s: gets %s, which only %v need", where, e.Name, owners)
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			name := e.ValueFrom.SecretKeyRef.Name
			if named(m.secrets, name) == nil && !slices.Contains(externalSecrets, name) {
				report("%s: %s references Secret %s, which neither the overlay nor docs/operations.md provides", where, e.Name, name)
			}
		}
	}
	if slices.Contains(services, w.name) {
		for name, owners := range secretVars {
			if slices.Contains(owners, w.name) && !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name }) {
				report("%s: does not get %s", where, name)
			}
		}
	}
}

// checkServices: every service has a Deployment and a Service that selects
// its pods on ports they have; every other Service selects some pods, or
// has EndpointSlices naming where it goes.
func checkServices(m *manifest, report reporter) {
	for _, name := range services {
		d := named(m.deployments, name)
		if d == nil {
			report("%s: no Deployment", name)
			continue
		}
		if named(m.services, name) == nil {
			report("%s: no Service", name)
		}
	}
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			if !slices.ContainsFunc(m.endpointSlices, func(e *discoveryv1.EndpointSlice) bool { return e.Labels["kubernetes.io/service-name"] == s.Name }) {
				report("%s: Service has neither a selector nor EndpointSlices", s.Name)
			}
			continue
		}
		var target *workload
		for _, w := range m.workloads() {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
				target = &w
				break
			}
		}
		if target == nil {
			owner := s.Name
			if named(m.deployments, s.Name) != nil {
				owner += ": Service selects no pod of the Deployment"
			} else {
				owner += ": Service selects no pods"
			}
			report("%s", owner)
			continue
		}
		for _, p := range s.Spec.Ports {
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port)
			}
			if !slices.ContainsFunc(target.template.Spec.Containers, func(c corev1.Container) bool {
				port := containerPort(c, tp)
				return port != 0 && slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == port })
			}) {
				report("%s: Service port %s targets %s, which no container of %s has", s.Name, p.Name, tp.String(), target.name)
			}
		}
	}
}

// checkConfig: the shared settings name a token-broker that exists.
func checkConfig(m *manifest, report reporter) {
	cm := named(m.configMaps, "hipersync-config")
	if cm == nil {
		report("no ConfigMap hipersync-config")
		return
	}
	host, port, err := net.SplitHostPort(cm.Data["TOKEN_BROKER_ADDR"])
	if err != nil {
		report("hipersync-config: TOKEN_BROKER_ADDR %q: %v", cm.Data["TOKEN_BROKER_ADDR"], err)
		return
	}
	s := named(m.services, strings.Split(host, ".")[0])
	if s == nil || !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port }) {
		report("hipersync-config: TOKEN_BROKER_ADDR %s is no Service port of the overlay", cm.Data["TOKEN_BROKER_ADDR"])
	}
}

// checkDev: one replica of everything, and NATS (with JetStream) and Redis
// in the cluster.
func checkDev(m *manifest, report reporter) {
	for _, w := range m.workloads() {
		if w.replicas != 1 {
			report("%s: %d replicas; dev runs one of each", w.name, w.replicas)
		}
	}
	jetstream := slices.ContainsFunc(m.statefulSets, func(s *appsv1.StatefulSet) bool {
		return slices.ContainsFunc(s.Spec.Template.Spec.Containers, func(c corev1.Container) bool {
			return slices.Contains(append(slices.Clone(c.Command), c.Args...), "--jetstream")
		})
	})
	if !jetstream || named(m.services, "nats") == nil {
		report("no in-cluster NATS: want a StatefulSet running nats-server --jetstream behind Service nats")
	}
	if named(m.services, "redis") == nil || named(m.deployments, "redis") == nil && named(m.statefulSets, "redis") == nil {
		report("no in-cluster Redis: want a workload redis behind Service redis")
	}
}

func checkProd(m *manifest, report reporter) {
	checkIdentities(m, report)
	if len(m.secrets) > 0 {
		report("holds Secret %s: production Secrets are created outside the repository", m.secrets[0].Name)
	}
	if named(m.deployments, "hiper-sim") != nil {
		report("runs hiper-sim, a test tool")
	}
	if cm := named(m.configMaps, "hipersync-config"); cm != nil && !strings.HasPrefix(cm.Data["HIPER_BASE_URL"], "https://") {
		report("hipersync-config: HIPER_BASE_URL %q is not HTTPS", cm.Data["HIPER_BASE_URL"])
	}
	for _, name := range services {
		d := named(m.deployments, name)
		if d == nil {
			continue
		}
		switch h := m.autoscaler(name); {
		case h != nil && d.Spec.Replicas != nil:
			report("%s: sets replicas, which every apply would reset under HorizontalPodAutoscaler %s", name, h.Name)
		case h != nil:
			// checkAutoscaler holds its minimum to 2.
		case replicasOf(d.Spec.Replicas) < 2:
			report("%s: %d replicas; production runs at least 2", name, replicasOf(d.Spec.Replicas))
		}
		checkBudget(m, d, report)
		checkSpread(d, report)
	}
	checkAutoscaler(m, report)
	checkNetworkPolicies(m, report)
}

func checkBudget(m *manifest, d *appsv1.Deployment, report reporter) {
	// The fewest pods the Deployment runs: its count, or its autoscaler's
	// minimum.
	replicas := int(replicasOf(d.Spec.Replicas))
	if h := m.autoscaler(d.Name); h != nil {
		replicas = int(replicasOf(h.Spec.MinReplicas))
	}
	for _, b := range m.budgets {
		if b.Spec.Selector == nil || !selects(b.Spec.Selector, d.Spec.Template.Labels) {
			continue
		}
		var available int // pods the budget keeps up, at the Deployment's size
		switch {
		case b.Spec.MaxUnavailable != nil:
			n, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MaxUnavailable, replicas, true)
			if err != nil {
				report("%s: PodDisruptionBudget %s: %v", d.Name, b.Name, err)
				return
			}
			available = replicas - n
		case b.Spec.MinAvailable != nil:
			n, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MinAvailable, replicas, true)
			if err != nil {
				report("%s: PodDisruptionBudget %s: %v", d.Name, b.Name, err)
				return
			}
			available = n
		}
		if available < 1 || available >= replicas {
			report("%s: PodDisruptionBudget %s keeps %d of %d pods: want at least one kept and one evictable", d.Name, b.Name, available, replicas)
		}
		return
	}
	report("%s: no PodDisruptionBudget selects its pods", d.Name)
}

// checkSpread: replicas land on different nodes. A constraint whose
// selector does not match the pod's own labels spreads nothing.
func checkSpread(d *appsv1.Deployment, report reporter) {
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		if c.TopologyKey == "kubernetes.io/hostname" && c.MaxSkew == 1 && c.LabelSelector != nil && selects(c.LabelSelector, d.Spec.Template.Labels) {
			return
		}
	}
	report("%s: replicas not spread over nodes (want a topologySpreadConstraint on kubernetes.io/hostname, maxSkew 1, selecting its pods)", d.Name)
}

// autoscaler returns the HorizontalPodAutoscaler of Deployment name, if any.
func (m *manifest) autoscaler(name string) *autoscalingv2.HorizontalPodAutoscaler {
	for _, h := range m.autoscalers {
		if ref := h.Spec.ScaleTargetRef; ref.Kind == "Deployment" && ref.Name == name {
			return h
		}
	}
	return nil
}

func checkAutoscaler(m *manifest, report reporter) {
	if h := m.autoscaler("order-forwarder"); h != nil {
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			report("order-forwarder: HorizontalPodAutoscaler %s may scale below 2", h.Name)
		}
		if h.Spec.MaxReplicas <= replicasOf(h.Spec.MinReplicas) || len(h.Spec.Metrics) == 0 {
			report("order-forwarder: HorizontalPodAutoscaler %s cannot scale (max %d, %d metrics)", h.Name, h.Spec.MaxReplicas, len(h.Spec.Metrics))
		}
		return
	}
	report("order-forwarder: no HorizontalPodAutoscaler")
}

// selects reports whether sel matches a set of labels; an empty selector
// matches everything, as in the API.
func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(set))
}
