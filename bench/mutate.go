package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The mutation run: gremlins (github.com/go-gremlins/gremlins) changes one
// operator at a time in the files that hold oss2s3's core decisions and
// runs the fast tests of their package against each change; a change no
// test notices (a mutant that LIVED) is a decision no test holds.
//
// gremlins works on a directory: its coverage run is `go test -cover
// ./dir/...` and each mutant runs `go test` on its package. Two things
// narrow that to the decisions and their fast tests: every other Go file
// under the directory is excluded (--exclude-files, one pattern a file),
// and GOFLAGS=-run=<the target's tests> keeps the slow tests of the
// package (JetStream, versitygw, 10,000-part copies) out of every run.

// gremlinsModule is the gremlins release the run uses, fetched by `go run`.
const gremlinsModule = "github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0"

// mutateTarget is one gremlins run: the files of one package that hold a
// decision, and the tests that hold them.
type mutateTarget struct {
	name  string
	dir   string   // the package, from the module root
	files []string // mutated, relative to dir
	tests []string // the tests run against each mutant (-run ^(...)$)
}

var mutateTargets = []mutateTarget{
	{name: "signature", dir: "transfer/ingest/signature", files: []string{"signature.go", "timestamp.go"},
		tests: []string{"Test.*"}},
	{name: "ossevent", dir: "transfer/ingest/ossevent", files: []string{"ossevent.go", "records.go", "scan.go", "unescape.go"},
		tests: []string{"Test.*", "Fuzz.*"}},
	{name: "transfer", dir: "transfer", files: []string{"compare.go", "partsize.go", "settle.go", "task.go"},
		tests: []string{"TestNeedCopy", "TestIsPlainMD5", "TestPartSizeFor", "TestPartCount", "TestCopier", "TestSettle",
			"TestSnoozeSaysWhy", "TestBackoffJitter", "TestRouter"}},
	{name: "reconcile", dir: "transfer/reconcile", files: []string{"compare.go", "march.go"},
		tests: []string{"TestCompare", "TestDecide", "TestRanges", "TestDiffFindsEveryDifference", "TestReportModeQueuesNothing",
			"TestCopyAllQueuesEverything", "TestByteOrderNotUTF16", "TestOutOfOrderPageStopsTheRun",
			"TestListingErrorMidRunDeletesNothing", "TestSyncDeletesUpToTheCap", "TestPrefixesNestAndSuffixes",
			"TestSourceIdentityDecidesMultipartObjects", "TestVerifyContentFindsEqualForeignCopies", "TestGeneratedListings",
			"TestFlatRange", "TestThousandsOfPrefixes", "TestSplitCoversEveryKey", "TestMarch.*"}},
}

type mutateOptions struct {
	targets     []mutateTarget
	workers     int
	coefficient int
	out         string
	minEfficacy float64
	dryRun      bool
}

func parseMutateFlags(args []string, stderr io.Writer) (mutateOptions, error) {
	o := mutateOptions{}
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	names := make([]string, len(mutateTargets))
	for i, t := range mutateTargets {
		names[i] = t.name
	}
	only := fs.String("targets", strings.Join(names, ","), "targets to run, comma-separated")
	fs.IntVar(&o.workers, "workers", 1, "gremlins --workers (mutants tested at once)")
	fs.IntVar(&o.coefficient, "timeout-coefficient", 10, "gremlins --timeout-coefficient: a mutant's build and test may take this many times the coverage run")
	fs.StringVar(&o.out, "out", "", "keep gremlins' JSON results and logs in this directory (default: a temporary one, removed)")
	fs.Float64Var(&o.minEfficacy, "min-efficacy", 90, "fail if a target's efficacy (killed / (killed + lived)) is below this percentage")
	fs.BoolVar(&o.dryRun, "dry-run", false, "list the mutants without testing them")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, n := range strings.Split(*only, ",") {
		i := slices.IndexFunc(mutateTargets, func(t mutateTarget) bool { return t.name == strings.TrimSpace(n) })
		if i < 0 {
			return o, fmt.Errorf("-targets: no target %q (have %s)", n, strings.Join(names, ", "))
		}
		o.targets = append(o.targets, mutateTargets[i])
	}
	return o, nil
}

// gremlinsResult is the part of gremlins' JSON output the run reads.
type gremlinsResult struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// mutantCounts are one file's or one target's mutants by status.
type mutantCounts struct {
	killed, lived, timedOut, notCovered, notViable, runnable, other int
}

func (c *mutantCounts) add(status string) {
	switch status {
	case "KILLED":
		c.killed++
	case "LIVED":
		c.lived++
	case "TIMED OUT":
		c.timedOut++
	case "NOT COVERED":
		c.notCovered++
	case "NOT VIABLE":
		c.notViable++
	case "RUNNABLE": // a dry run's covered mutants
		c.runnable++
	default:
		c.other++
	}
}

func (c mutantCounts) plus(o mutantCounts) mutantCounts {
	return mutantCounts{c.killed + o.killed, c.lived + o.lived, c.timedOut + o.timedOut,
		c.notCovered + o.notCovered, c.notViable + o.notViable, c.runnable + o.runnable, c.other + o.other}
}

// efficacy is gremlins' figure: killed / (killed + lived); timed-out and
// not-viable mutants count in neither.
func (c mutantCounts) efficacy() float64 {
	if c.killed+c.lived == 0 {
		return 100
	}
	return 100 * float64(c.killed) / float64(c.killed+c.lived)
}

func (c mutantCounts) String() string {
	if c.runnable > 0 {
		return fmt.Sprintf("%d covered mutants to test, %d not covered", c.runnable, c.notCovered)
	}
	return fmt.Sprintf("killed %d, lived %d, timed out %d, not covered %d, not viable %d, efficacy %.1f%%",
		c.killed, c.lived, c.timedOut, c.notCovered, c.notViable, c.efficacy())
}

func runMutate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	opts, err := parseMutateFlags(args, stderr)
	if err != nil {
		return err
	}
	goenv, err := moduleEnv(ctx, "mutate")
	if err != nil {
		return err
	}
	root := filepath.Dir(goenv["GOMOD"])
	out := opts.out
	if out == "" {
		if out, err = os.MkdirTemp("", "oss2s3-mutate-"); err != nil {
			return err
		}
		defer os.RemoveAll(out)
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(stdout, "mutation run: %s, oss2s3 at %s, --workers %d\n", gremlinsModule, treeRevision(ctx, root), opts.workers)
	var total mutantCounts
	var below []string
	for _, t := range opts.targets {
		tstart := time.Now()
		res, err := runGremlins(ctx, root, t, opts, out, getenv, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		sum := printTarget(stdout, root, t, res, time.Since(tstart))
		total = total.plus(sum)
		if !opts.dryRun && sum.efficacy() < opts.minEfficacy {
			below = append(below, fmt.Sprintf("%s %.1f%%", t.name, sum.efficacy()))
		}
	}
	fmt.Fprintf(stdout, "\nall targets: %s, in %s\n", total, time.Since(start).Round(time.Second))
	fmt.Fprintf(stdout, "mutate efficacy=%.1f killed=%d lived=%d seconds=%.0f\n", total.efficacy(), total.killed, total.lived, time.Since(start).Seconds())
	if len(below) > 0 {
		return fmt.Errorf("efficacy below %.0f%%: %s", opts.minEfficacy, strings.Join(below, ", "))
	}
	return nil
}

// printTarget prints one target's counts, per file and in all, and every
// mutant that lived with its line; it returns the target's counts.
func printTarget(stdout io.Writer, root string, t mutateTarget, res *gremlinsResult, took time.Duration) mutantCounts {
	var sum mutantCounts
	var lines []string
	for _, f := range res.Files {
		var c mutantCounts
		for _, m := range f.Mutations {
			c.add(m.Status)
		}
		sum = sum.plus(c)
		lines = append(lines, fmt.Sprintf("  %s: %s", filepath.Join(t.dir, f.Name), c))
	}
	slices.Sort(lines)
	fmt.Fprintf(stdout, "\n%s (%s, %s): %s, in %s\n", t.name, t.dir, strings.Join(t.files, " "), sum, took.Round(time.Second))
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	for _, f := range res.Files {
		path := filepath.Join(t.dir, f.Name)
		src, _ := os.ReadFile(filepath.Join(root, path))
		srcLines := strings.Split(string(src), "\n")
		for _, m := range f.Mutations {
			if m.Status != "LIVED" {
				continue
			}
			code := ""
			if m.Line >= 1 && m.Line <= len(srcLines) {
				code = strings.TrimSpace(srcLines[m.Line-1])
			}
			fmt.Fprintf(stdout, "  LIVED %s at %s:%d:%d  %s\n", m.Type, path, m.Line, m.Column, code)
		}
	}
	return sum
}

// runGremlins runs gremlins on one target and reads its JSON results.
func runGremlins(ctx context.Context, root string, t mutateTarget, opts mutateOptions, out string, getenv func(string) string, stderr io.Writer) (*gremlinsResult, error) {
	excludes, err := excludedFiles(filepath.Join(root, t.dir), t.files)
	if err != nil {
		return nil, err
	}
	result := filepath.Join(out, t.name+".json")
	args := []string{"run", gremlinsModule, "unleash", "--workers", fmt.Sprint(opts.workers),
		"--timeout-coefficient", fmt.Sprint(opts.coefficient), "--output", result}
	if opts.dryRun {
		args = append(args, "--dry-run")
	}
	for _, e := range excludes {
		args = append(args, "--exclude-files", "^"+regexp.QuoteMeta(e)+"$")
	}
	args = append(args, t.dir)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	// -count=1: gremlins times its coverage run and gives each mutant a
	// multiple of that; a cached run would time every mutant out.
	goflags := strings.TrimSpace(getenv("GOFLAGS") + " -count=1 -run=^(" + strings.Join(t.tests, "|") + ")$")
	cmd.Env = append(os.Environ(), "GOFLAGS="+goflags)
	logf, err := os.Create(filepath.Join(out, t.name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			fmt.Fprintf(stderr, "mutate %s: %s\n", t.name, sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	fmt.Fprintf(stderr, "mutate %s: GOFLAGS=%q go %s\n", t.name, goflags, strings.Join(args[:len(args)-1-2*len(excludes)], " ")+" ... "+t.dir)
	runErr := cmd.Run()
	pw.Close()
	<-done
	if runErr != nil {
		return nil, fmt.Errorf("gremlins: %w (its output: %s)", runErr, logf.Name())
	}
	b, err := os.ReadFile(result)
	if err != nil {
		return nil, err
	}
	var res gremlinsResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("gremlins' results %s: %w", result, err)
	}
	return &res, nil
}

// excludedFiles lists every non-test Go file under dir (subdirectories
// too: gremlins walks them) but keep, relative to dir.
func excludedFiles(dir string, keep []string) ([]string, error) {
	var out []string
	found := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if slices.Contains(keep, rel) {
			found++
			return nil
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err == nil && found != len(keep) {
		err = errors.New("a target file is missing (renamed?): " + strings.Join(keep, ", "))
	}
	return out, err
}
