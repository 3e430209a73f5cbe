package main

import (
	"fmt"
	"os"
	"slices"
	"time"
)

// cpuTicks is the CPU time of all the machine's cores, by what it went to.
type cpuTicks struct {
	busy   time.Duration // user, nice, system, irq, softirq, steal
	idle   time.Duration
	iowait time.Duration // idle with disk I/O outstanding
}

func (a cpuTicks) sub(b cpuTicks) cpuTicks {
	return cpuTicks{busy: a.busy - b.busy, idle: a.idle - b.idle, iowait: a.iowait - b.iowait}
}

// cpuSample is what a window reads at its start and at its end.
type cpuSample struct {
	at      time.Time
	machine cpuTicks
	versity time.Duration // the destination server's CPU so far
	bench   time.Duration // this process's: the OSS emulator and the harness
}

// window is one timed copy: the clock, and the CPU everything on the
// machine used meanwhile, so that a slow run can be told apart as the
// tool's, the bed's (versitygw, the emulator) or other work on the machine.
type window struct {
	versityPID int
	start, end cpuSample
	// tool is the contender's own CPU (user + system, all threads) in the
	// window, set by the contender: from /proc for a process that outlives
	// the window, from the rusage of its exit for one that is the window.
	tool time.Duration
	err  error
	note string // anything the contender saw that explains a slow run
}

func (w *window) sample() cpuSample {
	s := cpuSample{at: time.Now(), bench: selfCPU()}
	var err error
	if s.machine, err = machineCPU(); err != nil && w.err == nil {
		w.err = err
	}
	if s.versity, err = procCPU(w.versityPID); err != nil && w.err == nil {
		w.err = fmt.Errorf("versitygw CPU: %w", err)
	}
	return s
}

// begin starts the clock; finish stops it.
func (w *window) begin()  { w.start = w.sample() }
func (w *window) finish() { w.end = w.sample() }

func (w *window) elapsed() time.Duration { return w.end.at.Sub(w.start.at) }

// cpuShares is where the machine's CPU went in one window, in cores
// (CPU seconds per second of the window).
type cpuShares struct {
	tool, versity, bench float64
	// other is the machine's busy time nobody above accounts for: other
	// programs (builds, tests of other agents) and the kernel's writeback.
	other  float64
	iowait float64
	idle   float64 // not counting iowait
}

// shares turns a window's counters into cores. /proc counts in ticks of
// 10 ms, so other may come out slightly below zero; it is shown as is.
func (w *window) shares() cpuShares {
	secs := w.elapsed().Seconds()
	if secs <= 0 {
		return cpuShares{}
	}
	m := w.end.machine.sub(w.start.machine)
	versity := w.end.versity - w.start.versity
	bench := w.end.bench - w.start.bench
	return cpuShares{
		tool:    w.tool.Seconds() / secs,
		versity: versity.Seconds() / secs,
		bench:   bench.Seconds() / secs,
		other:   (m.busy - w.tool - versity - bench).Seconds() / secs,
		iowait:  m.iowait.Seconds() / secs,
		idle:    m.idle.Seconds() / secs,
	}
}

func (s cpuShares) String() string {
	return fmt.Sprintf("cores: tool %.2f, versitygw %.2f, emulator+harness %.2f, other %.2f, iowait %.2f, idle %.2f",
		s.tool, s.versity, s.bench, s.other, s.iowait, s.idle)
}

// exitCPU is a finished child's CPU time (user + system, all threads) from
// the rusage of its exit: exact, unlike /proc's 10 ms ticks.
func exitCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// median is the middle of xs (the mean of the two middle ones for an even
// count), 0 for none. Figures are medians of runs, never the best run.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// perUnit is CPU seconds per unit of work (a GiB, an object); 0 without work.
func perUnit(cpu time.Duration, units float64) float64 {
	if units <= 0 {
		return 0
	}
	return cpu.Seconds() / units
}
