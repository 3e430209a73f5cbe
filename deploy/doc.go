// Package deploy holds oss2s3's deployment files (the example
// configuration, Grafana dashboards, Prometheus rules, container, compose
// and Kubernetes manifests), the tests that check them against the code,
// and the one thing the binary needs from them: the secret values they
// print (PrintedSecrets). The dashboards are written by deploy/grafana/dashgen.
//
// Why the printed secrets are compiled in: a configuration copied from the
// docs with a secret left as printed is open to anyone who read the docs
// (they can sign webhooks for its buckets, or call its admin API), so
// `oss2s3 serve` refuses such values. The binary runs without the
// repository, so it cannot read the docs at run time. The files in deploy/
// are embedded and scanned when asked (secretsIn), so editing them needs no
// second step; the values printed only outside deploy/ (README.md, and
// values earlier versions printed) are a short list here, because go:embed
// cannot reach outside the package's directory. TestDocsPrintNoUnlistedSecret
// scans every doc the repository ships with the same scanner and fails when
// one prints a secret-like value PrintedSecrets does not hold, so a doc edit
// cannot bring back a working public secret silently. The scanner is a
// heuristic over lines (a key or variable named like a secret, then : or =
// and a value; ${NAME:-default} defaults of such variables), not a YAML
// parser, because secrets are also printed in comments, shell commands and
// Markdown; a false match only means that exact string is refused.
package deploy
