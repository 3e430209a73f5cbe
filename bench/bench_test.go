package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"64MiB", 64 << 20}, {"1GiB", 1 << 30}, {"10KiB", 10 << 10},
		{"2g", 2 << 30}, {"5MB", 5e6}, {" 1.5 MiB ", 3 << 19},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "ten"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{1 << 30: "1GiB", 10 << 10: "10KiB", 3 << 19: "1536KiB", 3<<19 + 1: "1.50MiB", 100: "100B", 4 << 30: "4GiB"} {
		if got := formatSize(in); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseObjectsTotalReadsOneTasksResults(t *testing.T) {
	t.Parallel()
	const text = `# HELP oss2s3_objects_total Jobs finished by the copy workers, by task and result.
# TYPE oss2s3_objects_total counter
oss2s3_objects_total{result="copied",task="bench"} 9998
oss2s3_objects_total{result="skipped",task="bench"} 2
oss2s3_objects_total{task="bench",result="failed"} 1
oss2s3_objects_total{result="retried",task="bench"} 3
oss2s3_objects_total{result="copied",task="other"} 5
oss2s3_objects_total_created{result="copied",task="bench"} 1.7e+09
go_goroutines 12
`
	got, err := parseObjectsTotal(strings.NewReader(text), "bench")
	if err != nil {
		t.Fatal(err)
	}
	if got["copied"] != 9998 || got["skipped"] != 2 || got["failed"] != 1 || got["retried"] != 3 || len(got) != 4 {
		t.Fatalf("got %v", got)
	}
	if c := countsOf(got); c.done != 10_000 || c.dead != 1 || c.retried != 3 {
		t.Fatalf("counts %+v: want 10000 done (copied + skipped), 1 dead-lettered (failed), 3 retried", c)
	}
	if _, err := parseObjectsTotal(strings.NewReader("go_goroutines 1\n"), "bench"); err == nil {
		t.Fatal("no series: no error")
	}
}

func TestSampleIndexesSpreadAndRotate(t *testing.T) {
	t.Parallel()
	if got := sampleIndexes(10, 3, 0); !slices.Equal(got, []int{0, 3, 6}) {
		t.Errorf("got %v", got)
	}
	if got := sampleIndexes(4, 1, 1); !slices.Equal(got, []int{1}) {
		t.Errorf("rotated: got %v", got)
	}
	if got := sampleIndexes(2, 5, 0); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("more than there are: got %v", got)
	}
	if got := sampleIndexes(5, 0, 0); got != nil {
		t.Errorf("none: got %v", got)
	}
}

func TestChunksCoverEveryByteOnce(t *testing.T) {
	t.Parallel()
	objs := []srcObject{{Size: 10}, {Size: 16}, {Size: 0}, {Size: 1}}
	cs := chunksOf(objs, 8)
	covered := make([]int64, len(objs))
	for i, c := range cs {
		if c.off != covered[c.obj] || c.n <= 0 || c.n > 8 {
			t.Fatalf("chunk %d %+v out of order", i, c)
		}
		if want := int32(c.off/8 + 1); c.part != want {
			t.Fatalf("chunk %+v: part %d, want %d", c, c.part, want)
		}
		covered[c.obj] += c.n
	}
	for i, o := range objs {
		if covered[i] != o.Size {
			t.Errorf("object %d: %d of %d bytes", i, covered[i], o.Size)
		}
	}
}

func TestParseCopyFlags(t *testing.T) {
	t.Parallel()
	o, err := parseCopyFlags([]string{"-large-size", "64MiB", "-small-count", "500", "-cases", "small,large",
		"-rclone-small", "--transfers 8; ;--transfers 16 --checkers 16"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.largeSize != 64<<20 || o.smallCount != 500 || o.largeCount != 4 || o.runs != 3 || !slices.Equal(o.cases, []string{"small", "large"}) {
		t.Errorf("got %+v", o)
	}
	if len(o.rcloneSmall) != 2 || !slices.Equal(o.rcloneSmall[1], []string{"--transfers", "16", "--checkers", "16"}) {
		t.Errorf("rclone variants %q", o.rcloneSmall)
	}
	for _, bad := range [][]string{{"-cases", "huge"}, {"-runs", "0"}, {"-ceiling-part", "1MiB"}, {"-ceiling-streams", "0"}, {"extra"}} {
		if _, err := parseCopyFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFinalLine(t *testing.T) {
	t.Parallel()
	r := results{
		large:    &caseResult{oss2s3: 300e6, rclone: 250e6, ceiling: 400e6, oss2s3CPU: 1.5, rcloneCPU: 4},
		small:    &caseResult{oss2s3: 900, rclone: 600, oss2s3CPU: 300e-6, rcloneCPU: 500e-6},
		rssBytes: 100<<20 + 1,
	}
	want := "copy large_ratio=1.20 small_ratio=1.50 ceiling_ratio=0.75 peak_rss_mib=101 cpu_per_gib_ratio=0.38 cpu_per_object_ratio=0.60"
	if got := r.line(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	want = "copy large_ratio=0.00 small_ratio=0.00 ceiling_ratio=0.00 peak_rss_mib=0 cpu_per_gib_ratio=0.00 cpu_per_object_ratio=0.00"
	if got := (results{}).line(); got != want {
		t.Errorf("nothing run: got %s", got)
	}
}

func TestParseFCFlags(t *testing.T) {
	o, err := parseFCFlags([]string{"-starts", "7", "-modes", "webhook, sqs,webhook"}, io.Discard)
	if err != nil || o.starts != 7 || len(o.modes) != 2 || o.modes[0] != "webhook" || o.modes[1] != "sqs" {
		t.Errorf("parseFCFlags = %+v, %v; want 7 starts of webhook and sqs", o, err)
	}
	for _, bad := range [][]string{{"-starts", "0"}, {"-modes", "mns"}, {"-modes", "sqs"}, {"extra"}} {
		if _, err := parseFCFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFCFlags(%q) accepted", bad)
		}
	}
}
