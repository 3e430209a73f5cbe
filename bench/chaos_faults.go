package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/transfer"
)

// faultRunner plays a schedule against the bed and keeps the tally: kills
// done, episodes run, and the resume time of every multipart copy a kill
// interrupted.
type faultRunner struct {
	b   *chaosBed
	rng *rand.Rand // guarded by mu

	wg       sync.WaitGroup
	natsMu   sync.Mutex // one NATS node down at a time
	mu       sync.Mutex
	done     map[faultKind]int
	skipped  []string
	resumes  []time.Duration // from a kill to its copies resumed
	watching []*resumeWatch
	episode  int
}

func newFaultRunner(b *chaosBed, seed uint64) *faultRunner {
	return &faultRunner{b: b, rng: rand.New(rand.NewPCG(seed, 0xfa17)), done: map[faultKind]int{}}
}

func (r *faultRunner) count(k faultKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[k]
}

func (r *faultRunner) intn(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(n)
}

// run plays plan from t0 until ctx ends (the end of the load). Kills and
// episodes run in goroutines of their own; wait waits for them, which
// restart what they killed and undo what they did even when ctx ends.
func (r *faultRunner) run(ctx context.Context, t0 time.Time, plan []fault) {
	for _, f := range plan {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(t0.Add(f.At))):
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.apply(ctx, f); err != nil {
				r.mu.Lock()
				r.skipped = append(r.skipped, fmt.Sprintf("%s: %v", f, err))
				r.mu.Unlock()
				r.b.logf("fault %s not done: %v", f.Kind, err)
				return
			}
			r.mu.Lock()
			r.done[f.Kind]++
			r.mu.Unlock()
		}()
	}
}

func (r *faultRunner) wait() { r.wg.Wait() }

// apply carries out one fault; for an episode it returns when the episode
// is over (at once when ctx ends).
func (r *faultRunner) apply(ctx context.Context, f fault) error {
	b := r.b
	r.mu.Lock()
	r.episode++
	name := fmt.Sprintf("%s-%d", f.Kind, r.episode)
	r.mu.Unlock()
	episode := func(on func() error, off func()) error {
		if err := on(); err != nil {
			return err
		}
		b.logf("fault: %s", f)
		select {
		case <-ctx.Done():
		case <-time.After(f.For):
		}
		off()
		return nil
	}
	switch f.Kind {
	case faultReplicaKill:
		return r.killReplica(ctx, f)
	case faultNATSKill:
		return r.killNATS(ctx, f)
	case faultSlowDown:
		return episode(func() error { b.slow.setShare(f.Share); return nil }, func() { b.slow.setShare(0) })
	case faultS3Latency:
		return episode(func() error {
			return addToxic(b.s3Proxy, name, "latency", 1, map[string]any{"latency": f.Latency.Milliseconds(), "jitter": f.Latency.Milliseconds() / 4})
		}, func() { removeToxic(b.s3Proxy, name) })
	case faultS3Reset:
		return episode(func() error {
			return addToxic(b.s3Proxy, name, "reset_peer", f.Share, map[string]any{"timeout": 0})
		}, func() { removeToxic(b.s3Proxy, name) })
	case faultNATSLatency:
		return episode(func() error {
			for _, n := range b.nats.nodes {
				if err := addToxic(n.proxy, name, "latency", 1, map[string]any{"latency": f.Latency.Milliseconds(), "jitter": f.Latency.Milliseconds() / 4}); err != nil {
					return err
				}
			}
			return nil
		}, func() {
			for _, n := range b.nats.nodes {
				removeToxic(n.proxy, name)
			}
		})
	case faultNATSReset:
		n := b.nats.nodes[r.intn(len(b.nats.nodes))]
		return episode(func() error {
			return addToxic(n.proxy, name, "reset_peer", 1, map[string]any{"timeout": 0})
		}, func() { removeToxic(n.proxy, name) })
	case faultOSSCut:
		b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "GetObject", CutBodyAfter: f.CutAfter, Times: f.Times})
		b.logf("fault: %s", f)
		return nil
	}
	return fmt.Errorf("unknown fault kind %q", f.Kind)
}

func addToxic(p *toxiproxy.Proxy, name, kind string, toxicity float64, attrs map[string]any) error {
	body, err := json.Marshal(map[string]any{"name": name, "type": kind, "stream": "downstream", "toxicity": toxicity, "attributes": attrs})
	if err != nil {
		return err
	}
	if _, err := p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return fmt.Errorf("toxic %s on %s: %w", kind, p.Name, err)
	}
	return nil
}

func removeToxic(p *toxiproxy.Proxy, name string) {
	_ = p.Toxics.RemoveToxic(context.Background(), name)
}

// killReplica SIGKILLs a replica, preferring one that owns a multipart
// copy at that moment (writing a multipart object to make one if none
// does), so that the kill interrupts a copy whose resume can be timed;
// then it restarts the replica after f.For. At least one replica stays up.
func (r *faultRunner) killReplica(ctx context.Context, f fault) error {
	b := r.b
	victim, owned, err := r.chooseVictim(ctx)
	if err != nil {
		return err
	}
	pid := victim.proc.pid()
	owner, keys := uploadsOf(owned, pid)
	killed := time.Now()
	b.replicas.kill(victim)
	b.logf("fault: %s: SIGKILL %s (pid %d) with %d multipart cop%s in hand", f, victim.name(), pid, len(keys), plural(len(keys), "y", "ies"))
	if len(keys) > 0 {
		w := &resumeWatch{killed: killed, owner: owner, keys: keys, replica: victim.name()}
		r.mu.Lock()
		r.watching = append(r.watching, w)
		r.mu.Unlock()
		go r.watchResume(w)
	}
	select {
	case <-ctx.Done():
	case <-time.After(f.For):
	}
	if err := b.replicas.start(b.ctx, victim); err != nil {
		b.logf("replica kill: restart of %s failed: %v", victim.name(), err)
		return nil // killed all the same; the end of the run starts it again
	}
	b.logf("fault: %s back after %.1fs", victim.name(), time.Since(killed).Seconds())
	return nil
}

// chooseVictim picks the replica to kill, with the multipart checkpoints
// read last: one that owns a multipart copy if any does within 8 s (after
// writing a multipart object once to make one), else any running one. It
// needs two replicas running, and waits 20 s more for them.
func (r *faultRunner) chooseVictim(ctx context.Context) (*replica, map[string][]checkpoint, error) {
	b := r.b
	baited := false
	for deadline := time.Now().Add(8 * time.Second); ; {
		running := b.replicas.running()
		owned, err := b.ownedUploads(ctx)
		if err != nil {
			b.logf("replica kill: reading checkpoints: %v", err)
		}
		if len(running) >= 2 {
			if candidates := owningReplicas(owned, running); len(candidates) > 0 {
				return candidates[r.intn(len(candidates))], owned, nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				pids := make([]int, 0, len(running))
				for pid := range running {
					pids = append(pids, pid)
				}
				return running[pids[r.intn(len(pids))]], owned, nil
			}
			if !baited {
				baited = true
				if err := b.src.bait(); err != nil {
					return nil, nil, err
				}
			}
		} else if time.Now().After(deadline.Add(20*time.Second)) || ctx.Err() != nil {
			return nil, nil, errors.New("fewer than two replicas running")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// owningReplicas returns the running replicas that own a checkpoint of
// owned, one entry per owner.
func owningReplicas(owned map[string][]checkpoint, running map[int]*replica) []*replica {
	var candidates []*replica
	for owner := range owned {
		if pid, ok := ownerPID(owner); ok && running[pid] != nil {
			candidates = append(candidates, running[pid])
		}
	}
	return candidates
}

// uploadsOf returns the owner of owned whose pid is pid (the last one, if
// several) and the checkpoints of every such owner.
func uploadsOf(owned map[string][]checkpoint, pid int) (string, []checkpoint) {
	var keys []checkpoint
	var owner string
	for o, cps := range owned {
		if p, ok := ownerPID(o); ok && p == pid {
			owner, keys = o, append(keys, cps...)
		}
	}
	return owner, keys
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

var ownerRE = regexp.MustCompile(`-(\d+)-[0-9a-f]+(?:/[0-9a-f]+)?$`)

// ownerPID reads the pid out of a checkpoint's owner: the process,
// "<hostname>-<pid>-<hex>", then "/<hex>" naming the one copy that holds
// the lease (transfer/multipart.go).
func ownerPID(owner string) (int, bool) {
	m := ownerRE.FindStringSubmatch(owner)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	return pid, err == nil
}

// resumeWatch follows the checkpoints a killed replica owned.
type resumeWatch struct {
	killed  time.Time
	owner   string
	replica string
	keys    []checkpoint

	mu   sync.Mutex
	open []checkpoint // not taken over when given up on
}

// watchResume polls the killed replica's checkpoints until each is owned by
// someone else or gone (completed or aborted), and records the time from
// the kill to the last of them. It gives up when the bed's run ends.
func (r *faultRunner) watchResume(w *resumeWatch) {
	b := r.b
	left := map[string]checkpoint{}
	for _, cp := range w.keys {
		left[cp.kvKey] = cp
	}
	for len(left) > 0 {
		select {
		case <-b.watchCtx.Done():
			w.mu.Lock()
			for _, cp := range left {
				w.open = append(w.open, cp)
			}
			w.mu.Unlock()
			return
		case <-time.After(200 * time.Millisecond):
		}
		for k := range left {
			cp, gone, err := b.checkpoint(b.watchCtx, k)
			if err != nil {
				continue
			}
			// A copy the kill came too late for (completed, but its
			// checkpoint not yet deleted) is done: that is no resume
			// to wait for.
			if gone || cp.Owner != left[k].Owner || b.destinationHolds(b.watchCtx, cp.Key, cp.ETag) {
				delete(left, k)
			}
		}
	}
	took := time.Since(w.killed)
	r.mu.Lock()
	r.resumes = append(r.resumes, took)
	r.mu.Unlock()
	b.logf("resume: the %d multipart cop%s %s held were taken over or finished %.1fs after the kill", len(w.keys), plural(len(w.keys), "y", "ies"), w.replica, took.Seconds())
}

// destinationHolds reports whether the destination (read directly) holds
// the source version etag of key.
func (b *chaosBed) destinationHolds(ctx context.Context, key, etag string) bool {
	ok, err := b.lag.reached(ctx, key, &expected{etag: etag, size: -1})
	return err == nil && ok
}

// unresumed lists the copies a kill interrupted that were never taken
// over.
func (r *faultRunner) unresumed() []problem {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []problem
	for _, w := range r.watching {
		w.mu.Lock()
		for _, cp := range w.open {
			out = append(out, problem{cp.Key, fmt.Sprintf("ETag %s, still owned by %s (%s, SIGKILLed at %s), last heartbeat %s",
				cp.ETag, w.owner, w.replica, w.killed.Format("15:04:05.0"), cp.Heartbeat.Format("15:04:05.0"))})
		}
		w.mu.Unlock()
	}
	return out
}

// killNATS SIGKILLs one NATS node (the job stream's leader, or any) once
// the cluster is whole and the job stream's replicas are current, and
// restarts it after f.For with the same store and ports.
func (r *faultRunner) killNATS(ctx context.Context, f fault) error {
	b := r.b
	r.natsMu.Lock()
	defer r.natsMu.Unlock()
	var leader string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var err error
		if leader, err = b.jobStreamHealthy(ctx); err == nil && len(b.nats.down()) == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("cluster not whole: %v (nodes down %v)", err, b.nats.down())
		}
	}
	i := r.intn(len(b.nats.nodes))
	if f.Leader {
		if j := b.nats.index(leader); j >= 0 {
			i = j
		}
	}
	name := b.nats.nodes[i].spec.Name
	killed := time.Now()
	b.nats.kill(i)
	b.logf("fault: %s: SIGKILL NATS node %s (the job stream's leader is %s)", f, name, leader)
	select {
	case <-ctx.Done():
	case <-time.After(f.For):
	}
	if err := b.nats.start(i); err != nil {
		b.logf("nats kill: restart of %s failed: %v", name, err)
		return nil
	}
	b.logf("fault: NATS node %s back after %.1fs", name, time.Since(killed).Seconds())
	return nil
}

// jobStreamHealthy returns the job stream's leader if it has one and every
// replica of it is current.
func (b *chaosBed) jobStreamHealthy(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := b.js.Stream(cctx, transfer.JobStream)
	if err != nil {
		return "", err
	}
	si := s.CachedInfo()
	if si.Cluster == nil || si.Cluster.Leader == "" {
		return "", errors.New("job stream has no leader")
	}
	for _, p := range si.Cluster.Replicas {
		if !p.Current || p.Offline {
			return "", fmt.Errorf("job stream replica %s not current", p.Name)
		}
	}
	if len(si.Cluster.Replicas) != 2 {
		return "", fmt.Errorf("job stream has %d followers, want 2", len(si.Cluster.Replicas))
	}
	return si.Cluster.Leader, nil
}

// checkpoint is what the harness reads of a multipart checkpoint
// (transfer.Checkpoint's JSON).
type checkpoint struct {
	kvKey     string
	Task      string    `json:"task"`
	Key       string    `json:"key"`
	ETag      string    `json:"etag"`
	Giant     bool      `json:"giant"`
	Owner     string    `json:"owner"`
	Heartbeat time.Time `json:"heartbeat"`
}

// liveBeat is how recent a checkpoint's heartbeat must be for its owner to
// count as copying it now: a checkpoint left behind by a copy that ended
// (its delete failed) keeps an old heartbeat.
const liveBeat = 15 * time.Second

// checkpointList reads every multipart checkpoint (main records only,
// not parts).
func (b *chaosBed) checkpointList(ctx context.Context) ([]checkpoint, error) {
	kv, err := b.checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	lister, err := kv.ListKeysFiltered(cctx, "u.*.*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	defer func() { _ = lister.Stop() }()
	var out []checkpoint
	for k := range lister.Keys() {
		cp, gone, err := b.checkpoint(cctx, k)
		if err != nil || gone {
			continue
		}
		out = append(out, cp)
	}
	return out, cctx.Err()
}

// ownedUploads groups the checkpoints of copies in progress (not giant,
// heartbeat recent) by owner.
func (b *chaosBed) ownedUploads(ctx context.Context) (map[string][]checkpoint, error) {
	cps, err := b.checkpointList(ctx)
	out := map[string][]checkpoint{}
	for _, cp := range cps {
		if !cp.Giant && cp.Owner != "" && time.Since(cp.Heartbeat) < liveBeat {
			out[cp.Owner] = append(out[cp.Owner], cp)
		}
	}
	return out, err
}

// checkpoint reads one checkpoint; gone if it was deleted.
func (b *chaosBed) checkpoint(ctx context.Context, kvKey string) (cp checkpoint, gone bool, err error) {
	kv, err := b.checkpoints(ctx)
	if err != nil {
		return cp, false, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := kv.Get(cctx, kvKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return cp, true, nil
	}
	if err != nil {
		return cp, false, err
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return cp, false, fmt.Errorf("checkpoint %s: %w", kvKey, err)
	}
	cp.kvKey = kvKey
	return cp, false, nil
}

// checkpoints opens the checkpoint bucket (the replicas create it).
func (b *chaosBed) checkpoints(ctx context.Context) (jetstream.KeyValue, error) {
	b.kvMu.Lock()
	defer b.kvMu.Unlock()
	if b.kv != nil {
		return b.kv, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	kv, err := b.js.KeyValue(cctx, transfer.CheckpointBucket)
	if err != nil {
		return nil, err
	}
	b.kv = kv
	return kv, nil
}
