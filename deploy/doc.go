// Package deploy holds oss2s3's deployment files (Grafana dashboards,
// Prometheus rules, container, compose and Kubernetes manifests) and the
// tests that check them against the code; it has no Go code of its own.
// The dashboards are written by deploy/grafana/dashgen.
package deploy
