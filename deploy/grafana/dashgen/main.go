// Command dashgen writes oss2s3's Grafana dashboards
// (deploy/grafana/dashboards/*.json) from their definitions in Go, built
// with grafana-foundation-sdk's dashboardv2 builders and written in the
// classic JSON model; -check fails when the files differ.
//
//	go run ./deploy/grafana/dashgen          # rewrite the files
//	go run ./deploy/grafana/dashgen -check   # exit 1 if they are stale
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("dashgen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", filepath.Join("deploy", "grafana", "dashboards"), "directory of the dashboard JSON files")
	check := flags.Bool("check", false, "write nothing; fail if a file differs from what would be written")
	if err := flags.Parse(args); err != nil {
		return err
	}
	files, err := render()
	if err != nil {
		return err
	}
	if *check {
		stale, err := compare(*dir, files)
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			return fmt.Errorf("%s: stale, run go run ./deploy/grafana/dashgen: %s", *dir, strings.Join(stale, ", "))
		}
		fmt.Fprintf(stdout, "%d dashboards up to date\n", len(files))
		return nil
	}
	for _, name := range sortedNames(files) {
		if err := os.WriteFile(filepath.Join(*dir, name), files[name], 0o644); err != nil { //nolint:gosec // G306: dashboards are committed files, read by Grafana's provisioning
			return err
		}
		fmt.Fprintln(stdout, "wrote", filepath.Join(*dir, name))
	}
	return nil
}

// dashboards maps each file name to its dashboard.
func dashboards() map[string]*board {
	return map[string]*board{
		"oss2s3-overview.json":  overview(),
		"oss2s3-task.json":      task(),
		"oss2s3-reconcile.json": reconcile(),
	}
}

// render builds every dashboard and returns its file's bytes: the
// classic JSON model of its v2 definition (classic.go says why).
func render() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, b := range dashboards() {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c, err := classic(b.uid, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep PromQL's < > & readable in the file
		enc.SetIndent("", "  ")
		if err := enc.Encode(c); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = buf.Bytes()
	}
	return out, nil
}

// compare returns the files of dir that are missing or differ from files,
// and the JSON files of dir the generator does not write.
func compare(dir string, files map[string][]byte) ([]string, error) {
	var stale []string
	for _, name := range sortedNames(files) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) || (err == nil && !bytes.Equal(b, files[name])) {
			stale = append(stale, name)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	present, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	for _, p := range present {
		if _, ok := files[filepath.Base(p)]; !ok {
			stale = append(stale, filepath.Base(p)+" (not generated)")
		}
	}
	return stale, nil
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
