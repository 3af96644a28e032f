// Package deploy holds hipersync's deployment: Kubernetes manifests under
// k8s/ (a kustomize base and the dev and prod overlays) and the dashboards
// and alert rules under observability/. Its tests render both overlays and
// hold every object to the rules an SRE signs off (docs/operations.md), so
// a broken manifest fails CI. It is a module of its own so that the
// Kubernetes and kustomize libraries the tests need stay out of the
// services' builds.
package deploy
