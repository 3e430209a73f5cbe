package reconcile_test

import (
	"testing"
	"time"

	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

func TestLongestGap(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.Local) // a Wednesday
	cases := []struct {
		spec string
		want time.Duration
	}{
		{"@every 1h", time.Hour},
		{"@hourly", time.Hour},
		{"*/15 * * * *", 15 * time.Minute},
		{"0 9 * * 1-5", 72 * time.Hour}, // Friday 9:00 to Monday 9:00
		{"30 2 * * *", 24 * time.Hour},
	}
	for _, c := range cases {
		sched, err := reconcile.ParseSchedule(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if got := reconcile.LongestGap(sched, from); got != c.want {
			t.Errorf("%s: longest gap %v, want %v", c.spec, got, c.want)
		}
	}
}
