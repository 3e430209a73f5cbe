package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// runCheck is `oss2s3 check --config FILE`: the configuration read and
// validated exactly as serve reads it (variables expanded, prefix files
// read, every rule checked, example secrets refused), and nothing else:
// no listener, no NATS, no call to any service. It prints what serve would
// print for a bad file, or a one-line summary, and fails only for a bad
// file (as `promtool check config` does).
func runCheck(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", getenv("OSS2S3_CONFIG"), "configuration file (env OSS2S3_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" {
		return errors.New("no configuration: pass --config FILE or set OSS2S3_CONFIG")
	}
	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	scheduled := 0
	for _, t := range cfg.Tasks {
		if t.Reconcile.Schedule != "" {
			scheduled++
		}
	}
	queue := "embedded JetStream in " + cfg.DataDir
	if cfg.NATS.URL != "" {
		queue = "an external NATS" // its URL may hold a password: not printed
	}
	_, err = fmt.Fprintf(stdout, "%s: valid: %d task(s), %d with a reconcile schedule, %d webhook source(s), %s\n",
		*configPath, len(cfg.Tasks), scheduled, len(cfg.Webhook.Sources), queue)
	return err
}
