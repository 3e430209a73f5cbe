package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoGatewayPackages keeps the function small and its cold start
// short: it may share the event parser and the signature with the gateway,
// not the gateway itself.
func TestLinksNoGatewayPackages(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/labstack/echo",
		"github.com/nats-io/",
		"github.com/aliyun/aliyun-oss-go-sdk",
		"github.com/prometheus/",
		"github.com/aws/aws-sdk-go-v2/config",
		"github.com/aws/aws-sdk-go-v2/service/s3",
		"github.com/oss2s3/oss2s3/transfer/ingest",
		"github.com/oss2s3/oss2s3/transfer",
		"github.com/oss2s3/oss2s3/server",
		"github.com/oss2s3/oss2s3/metrics",
		"github.com/oss2s3/oss2s3/internal/",
		"go.yaml.in/yaml",
	}
	allowed := map[string]bool{ // of this module, only these
		"github.com/oss2s3/oss2s3/aliyun-fc":                 true,
		"github.com/oss2s3/oss2s3/transfer/ingest/ossevent":  true,
		"github.com/oss2s3/oss2s3/transfer/ingest/signature": true,
	}
	pkgs := strings.Fields(string(out))
	for _, p := range pkgs {
		for _, f := range forbidden {
			// The event parser and the signature live under
			// transfer/ingest: they are allowed, the rest of it is not.
			if strings.HasPrefix(p, f) && !allowed[p] {
				t.Errorf("the function links %s", p)
			}
		}
		if strings.HasPrefix(p, "github.com/oss2s3/oss2s3/") && !allowed[p] {
			t.Errorf("the function links %s: only ossevent and signature of the gateway's packages are allowed", p)
		}
	}
	if len(pkgs) < 10 || !strings.Contains(string(out), "github.com/aws/aws-sdk-go-v2/service/sqs\n") {
		t.Errorf("go list -deps printed %d packages and not the SQS client: the check looked at the wrong thing\n%s", len(pkgs), out)
	}
}
