package deploy

import (
	"fmt"
	"net"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// peer is something a connection starts or ends at: a pod (namespace and
// labels) or an address outside the cluster (labels nil).
type peer struct {
	name      string
	namespace string
	labels    map[string]string
	ip        net.IP
}

func (p peer) isPod() bool { return p.labels != nil }

// conn is a connection a rule expects to be allowed, or denied.
type conn struct {
	from, to peer
	port     int32
	protocol corev1.Protocol
}

func (c conn) String() string {
	return fmt.Sprintf("%s (%s:%d/%s)", c.to.name, c.to.ip, c.port, c.protocol)
}

// checkNetworkPolicies evaluates the overlay's policies as the cluster
// would, for every connection between the services, their dependencies and
// a few strangers, and reports each one allowed that is not needed and each
// one needed that is not allowed.
func checkNetworkPolicies(m *manifest, report reporter) {
	if len(m.networkPolicies) == 0 {
		report("no NetworkPolicies")
		return
	}
	ns := m.networkPolicies[0].Namespace
	if !slices.ContainsFunc(m.networkPolicies, func(p *networkingv1.NetworkPolicy) bool {
		return len(p.Spec.PodSelector.MatchLabels)+len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 &&
			slices.Contains(policyTypes(p), networkingv1.PolicyTypeIngress) && slices.Contains(policyTypes(p), networkingv1.PolicyTypeEgress)
	}) {
		report("no default-deny NetworkPolicy (every pod, Ingress and Egress, no rules)")
	}

	podIP := 10
	pod := func(name, namespace string, labels map[string]string) peer {
		podIP++
		return peer{name: name, namespace: namespace, labels: labels, ip: net.IPv4(10, 244, 0, byte(podIP))}
	}
	pods := map[string]peer{}
	for _, name := range services {
		if d := named(m.deployments, name); d != nil {
			pods[name] = pod(name, ns, d.Spec.Template.Labels)
		}
	}
	// The operator's pod (docs/operations.md, "Operator commands").
	pods["hipersync-cli"] = pod("hipersync-cli", ns, map[string]string{"app.kubernetes.io/name": "hipersync-cli"})
	dns := pod("kube-dns", "kube-system", map[string]string{"k8s-app": "kube-dns"})
	prometheus := pod("prometheus", "monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"})
	collector := pod("otel-collector", "monitoring", map[string]string{"app.kubernetes.io/name": "otel-collector"})
	ingress := pod("ingress-nginx", "ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx"})
	stranger := pod("stranger", ns, map[string]string{"app.kubernetes.io/name": "stranger"})
	neighbour := pod("neighbour", "default", map[string]string{"app": "neighbour"})
	hiper := peer{name: "hiper", ip: net.IPv4(200, 155, 1, 10)}
	metadata := peer{name: "cloud metadata", ip: net.IPv4(169, 254, 169, 254)}
	var natsServers, redisServers []peer
	for _, s := range m.endpointSlices {
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				p := peer{name: s.Labels["kubernetes.io/service-name"], ip: net.ParseIP(a)}
				switch p.name {
				case "nats":
					natsServers = append(natsServers, p)
				case "redis":
					redisServers = append(redisServers, p)
				}
			}
		}
	}
	if len(natsServers) == 0 || len(redisServers) == 0 {
		report("NetworkPolicies: no EndpointSlices for Services nats and redis to check them against")
	}

	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	needs := func(from peer) []conn {
		out := []conn{{from, dns, 53, udp}, {from, dns, 53, tcp}}
		for _, s := range natsServers {
			out = append(out, conn{from, s, 4222, tcp})
		}
		if from.name == "hipersync-cli" {
			return append(out, conn{from, pods["token-broker"], 9090, tcp})
		}
		out = append(out, conn{from, collector, 4317, tcp}, conn{prometheus, from, 8080, tcp})
		if from.name == "console" {
			// The admin API and the pages, through the ingress; no Hiper.
			return append(out, conn{ingress, from, 8088, tcp}, conn{from, pods["token-broker"], 9090, tcp})
		}
		out = append(out, conn{from, hiper, 443, tcp})
		if from.name == "token-broker" {
			for _, s := range redisServers {
				out = append(out, conn{from, s, 6379, tcp})
			}
			return out
		}
		return append(out, conn{from, pods["token-broker"], 9090, tcp})
	}
	// Any pod of the namespace may resolve names.
	wanted := []conn{{stranger, dns, 53, udp}, {stranger, dns, 53, tcp}}
	for _, p := range pods {
		wanted = append(wanted, needs(p)...)
	}
	// Every connection between these peers on these ports that no one needs
	// must be refused.
	everyone := []peer{dns, prometheus, collector, ingress, stranger, neighbour, hiper, metadata}
	everyone = append(everyone, natsServers...)
	everyone = append(everyone, redisServers...)
	for _, p := range pods {
		everyone = append(everyone, p)
	}
	ports := []int32{53, 80, 443, 4222, 4317, 6379, 8080, 8088, 9090}
	for _, from := range everyone {
		for _, to := range everyone {
			if from.name == to.name || !from.isPod() && !to.isPod() {
				continue
			}
			for _, port := range ports {
				for _, protocol := range []corev1.Protocol{tcp, udp} {
					c := conn{from, to, port, protocol}
					// Only what starts or ends in the namespace is the policies' to judge.
					if from.namespace != ns && to.namespace != ns {
						continue
					}
					need := slices.ContainsFunc(wanted, func(w conn) bool {
						return w.from.name == c.from.name && w.to.ip.Equal(c.to.ip) && w.port == c.port && w.protocol == c.protocol
					})
					allowed := allows(m.networkPolicies, ns, c)
					switch {
					case need && !allowed:
						report("NetworkPolicies: %s cannot reach %s", from.name, c)
					case !need && allowed:
						report("NetworkPolicies: %s may reach %s, which it does not need", from.name, c)
					}
				}
			}
		}
	}
}

// allows reports whether the policies of namespace ns let c through: its
// source's egress and its destination's ingress, each judged only where
// the pod is in ns.
func allows(policies []*networkingv1.NetworkPolicy, ns string, c conn) bool {
	egress := !c.from.isPod() || c.from.namespace != ns || allowedBy(policies, networkingv1.PolicyTypeEgress, c.from, c.to, c)
	ingress := !c.to.isPod() || c.to.namespace != ns || allowedBy(policies, networkingv1.PolicyTypeIngress, c.to, c.from, c)
	return egress && ingress
}

// rulePeers returns, for each rule of p in direction dir whose ports match
// c, the peers it lets through.
func rulePeers(p *networkingv1.NetworkPolicy, dir networkingv1.PolicyType, c conn) [][]networkingv1.NetworkPolicyPeer {
	var out [][]networkingv1.NetworkPolicyPeer
	if dir == networkingv1.PolicyTypeEgress {
		for _, r := range p.Spec.Egress {
			if portsMatch(r.Ports, c) {
				out = append(out, r.To)
			}
		}
		return out
	}
	for _, r := range p.Spec.Ingress {
		if portsMatch(r.Ports, c) {
			out = append(out, r.From)
		}
	}
	return out
}

// allowedBy: a pod no policy of the direction selects is open; one that is
// selected is open to what some rule's peers match. A rule without peers
// matches everyone.
func allowedBy(policies []*networkingv1.NetworkPolicy, dir networkingv1.PolicyType, pod, other peer, c conn) bool {
	selected := false
	for _, p := range policies {
		if !slices.Contains(policyTypes(p), dir) || !selects(&p.Spec.PodSelector, pod.labels) {
			continue
		}
		selected = true
		for _, peers := range rulePeers(p, dir, c) {
			if len(peers) == 0 || slices.ContainsFunc(peers, func(np networkingv1.NetworkPolicyPeer) bool { return peerMatches(np, p.Namespace, other) }) {
				return true
			}
		}
	}
	return !selected
}

func peerMatches(np networkingv1.NetworkPolicyPeer, ns string, p peer) bool {
	if np.IPBlock != nil {
		_, cidr, err := net.ParseCIDR(np.IPBlock.CIDR)
		if err != nil || !cidr.Contains(p.ip) {
			return false
		}
		for _, e := range np.IPBlock.Except {
			if _, ex, err := net.ParseCIDR(e); err == nil && ex.Contains(p.ip) {
				return false
			}
		}
		return true
	}
	if !p.isPod() {
		return false
	}
	if np.NamespaceSelector == nil {
		if p.namespace != ns {
			return false
		}
	} else if !selects(np.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": p.namespace}) {
		return false
	}
	return np.PodSelector == nil || selects(np.PodSelector, p.labels)
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, c conn) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		protocol := corev1.ProtocolTCP
		if p.Protocol != nil {
			protocol = *p.Protocol
		}
		if protocol != c.protocol {
			continue
		}
		if p.Port == nil {
			return true
		}
		// Named ports would need the destination's container ports; the
		// policies use numbers.
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if lo <= c.port && c.port <= hi {
			return true
		}
	}
	return false
}

// policyTypes applies the API's default: Ingress always, Egress when the
// policy has egress rules.
func policyTypes(p *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(p.Spec.PolicyTypes) > 0 {
		return p.Spec.PolicyTypes
	}
	types := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(p.Spec.Egress) > 0 {
		types = append(types, networkingv1.PolicyTypeEgress)
	}
	return types
}
