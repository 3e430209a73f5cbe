package main

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// TestProgressText: the CLI's progress bar shows the run's percentage and
// time left, its listing out of the source's count and its copies in
// bytes, and says "--" for what is not known yet.
func TestProgressText(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		p    *reconcile.RunProgress
		want string
	}{
		{nil, ""},
		{&reconcile.RunProgress{Phase: reconcile.PhaseListing}, "  --%  ETA --  "},
		{&reconcile.RunProgress{Phase: reconcile.PhaseListing, Percent: f(62.34), ETASeconds: f(80.4),
			Listing: reconcile.PhaseProgress{Objects: 1234, ObjectsTotal: 2000},
			Copies:  reconcile.PhaseProgress{Objects: 50, ObjectsTotal: 80, Bytes: 3 << 29, BytesTotal: 7 << 29, Rate: 12 << 20}},
			" 62.3%  ETA 1m20s  listing 1234/2000  copies 50/80, 1.5 GiB of 3.5 GiB (12.0 MiB/s)  "},
	} {
		if got := progressText(c.p); got != c.want {
			t.Errorf("progressText = %q, want %q", got, c.want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 40: "5.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
