package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests kill -9 a primary of a 3-node cluster (RF 3, 64 partitions,
// real processes) while 8 writers rewrite their keys as fast as the smart
// client lets them, then read every key back: under sync replication no
// acknowledged write may be lost; under async the loss is measured, and
// bounded by what the victim had not delivered yet, and a client's reads
// never go back in time.

const (
	ulKeyCount = 300 // keys, written once before the load
	ulWriters  = 8   // writer goroutines; writer w owns the keys i with i%ulWriters == w
	ulBefore   = 300 // acknowledged writes under load before the kill
	ulAfter    = 300 // and after it
)

func ulKey(i int) string { return fmt.Sprintf("ul-%03d", i) }

// ulStart starts a 3-node cluster (RF 3, 64 partitions) with the given
// replication mode and waits until every node holds every partition.
func ulStart(t *testing.T, replication string) []*kvProc {
	t.Helper()
	args := append([]string{"-replication", replication}, fastArgs...)
	dir := t.TempDir()
	procs := make([]*kvProc, 3)
	for i := range procs {
		id := fmt.Sprintf("node-%d", i+1)
		procs[i] = &kvProc{id: id, http: freeAddr(t), kv: freeAddr(t), dataDir: filepath.Join(dir, id)}
	}
	procs[0].launch(t, append([]string{"-partitions", "64", "-replication-factor", "3"}, args...)...)
	for _, p := range procs[1:] {
		p.launch(t, append([]string{"-join", procs[0].http}, args...)...)
	}
	waitMembers(t, procs, 3)
	waitVoters(t, procs, 3)
	for _, p := range procs {
		waitLoaded(t, p, 64)
		if st, err := kvStatus(p.kv); err != nil || string(st.Replication) != replication {
			t.Fatalf("%s: replication %q (error %v), want %q", p.id, st.Replication, err, replication)
		}
	}
	return procs
}

// ulVictim is the node, other than procs[0] (the first gateway of the
// clients), that is primary of the most partitions.
func ulVictim(t *testing.T, procs []*kvProc) (*kvProc, int) {
	t.Helper()
	c, err := clusterOf(procs[0])
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range c.PartitionMap.Partitions {
		count[p.PrimaryNode]++
	}
	var victim *kvProc
	for _, p := range procs[1:] {
		if victim == nil || count[p.id] > count[victim.id] {
			victim = p
		}
	}
	return victim, count[victim.id]
}

// ulLoad is the writers' record: per key the last acknowledged and the
// last attempted write number.
type ulLoad struct {
	mu           sync.Mutex
	acked, tried map[string]int
	lastErr      error

	ackedN, failedN atomic.Int64 // writes under load
	// phase: 0 before the victim's /ready sample, 1 from it until kill9
	// returned, 2 after. window counts the acknowledgements received in
	// phase 1 or later of writes begun before phase 2: every write the
	// victim acknowledged after its /ready sample is among them.
	phase  atomic.Int32
	window atomic.Int64
}

func newULLoad() *ulLoad {
	l := &ulLoad{acked: map[string]int{}, tried: map[string]int{}}
	for i := range ulKeyCount {
		l.acked[ulKey(i)], l.tried[ulKey(i)] = 1, 1
	}
	return l
}

func (l *ulLoad) of(k string) (acked, tried int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked[k], l.tried[k]
}

// writeFirst writes version 1 of every key.
func (l *ulLoad) writeFirst(t *testing.T, c *Client) {
	t.Helper()
	kvs := map[string]string{}
	for i := range ulKeyCount {
		kvs[ulKey(i)] = string(value(ulKey(i), 1))
	}
	writeAll(t, c, kvs)
}

// run starts the writers, without pause between writes, until ctx ends.
func (l *ulLoad) run(ctx context.Context, wg *sync.WaitGroup, c *Client) {
	for w := range ulWriters {
		wg.Go(func() {
			var keys []string
			for i := w; i < ulKeyCount; i += ulWriters {
				keys = append(keys, ulKey(i))
			}
			seq := map[string]int{}
			for _, k := range keys {
				seq[k] = 1
			}
			for n := 0; ctx.Err() == nil; n++ {
				k := keys[n%len(keys)]
				seq[k]++
				l.mu.Lock()
				l.tried[k] = seq[k]
				l.mu.Unlock()
				began := l.phase.Load()
				err := c.Put(ctx, k, value(k, seq[k]))
				if ctx.Err() != nil {
					return // cut by the end of the load: attempted, not a failure
				}
				if err != nil {
					l.failedN.Add(1)
					l.mu.Lock()
					l.lastErr = err
					l.mu.Unlock()
					continue
				}
				l.mu.Lock()
				l.acked[k] = seq[k]
				l.mu.Unlock()
				l.ackedN.Add(1)
				if began < 2 && l.phase.Load() >= 1 {
					l.window.Add(1)
				}
			}
		})
	}
}

// waitAcked waits until n writes were acknowledged under load.
func (l *ulLoad) waitAcked(t *testing.T, n int64, timeout time.Duration, what string) {
	t.Helper()
	if !poll(timeout, func() bool { return l.ackedN.Load() >= n }) {
		l.mu.Lock()
		last := l.lastErr
		l.mu.Unlock()
		t.Fatalf("%s: %d of %d writes acknowledged after %v (%d failed, last error %v)", what, l.ackedN.Load(), n, timeout, l.failedN.Load(), last)
	}
}

// check reads every key with a new client: it must hold a write number
// between (sync: at least) its last acknowledged and its last attempted
// one. It returns the keys holding less than their last acknowledged write.
func (l *ulLoad) check(t *testing.T, gateways []string, replication string) (lost int) {
	t.Helper()
	c := NewClient(gateways...)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		bad      []string
		lostKeys []string
		keys     = make(chan string)
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for k := range keys {
				acked, tried := l.of(k)
				v, err := c.Get(ctx, k)
				seq := 0
				if err == nil {
					seq, err = seqOf(k, v)
				}
				mu.Lock()
				switch {
				case err != nil:
					bad = append(bad, fmt.Sprintf("%s: %v", k, err))
				case seq > tried:
					bad = append(bad, fmt.Sprintf("%s: write %d, only %d were attempted", k, seq, tried))
				case seq < acked:
					lostKeys = append(lostKeys, fmt.Sprintf("%s: write %d, %d was acknowledged", k, seq, acked))
				}
				mu.Unlock()
			}
		})
	}
	for i := range ulKeyCount {
		keys <- ulKey(i)
	}
	close(keys)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%s: %d of %d keys unreadable or wrong, e.g. %v", replication, len(bad), ulKeyCount, bad[:min(5, len(bad))])
	}
	if len(lostKeys) > 0 {
		t.Logf("%s: lost acknowledged writes, e.g. %v", replication, lostKeys[:min(5, len(lostKeys))])
	}
	return len(lostKeys)
}

// ulSettle waits for the failover: the victim removed, every survivor
// holding every partition, loaded, and (async) nothing left in the
// survivors' replication queues.
func ulSettle(t *testing.T, survivors []*kvProc) {
	t.Helper()
	start := time.Now()
	waitMembers(t, survivors, 2)
	for _, p := range survivors {
		waitLoaded(t, p, 64)
	}
	var last []Status
	if !poll(20*time.Second, func() bool {
		last = last[:0]
		for _, p := range survivors {
			st, err := kvStatus(p.kv)
			if err != nil || st.Pending > 0 {
				return false
			}
			last = append(last, st)
		}
		return true
	}) {
		t.Fatalf("the survivors' replication queues did not drain: %+v", last)
	}
	t.Logf("failover settled %v after the writers stopped", time.Since(start).Round(time.Millisecond))
}

// TestSyncKillUnderLoad: under sync replication, kill -9 of the primary of
// the most partitions while 8 writers run loses no acknowledged write.
func TestSyncKillUnderLoad(t *testing.T) {
	begin := time.Now()
	procs := ulStart(t, "sync")
	gateways := []string{procs[0].http, procs[1].http, procs[2].http}
	kv := NewClient(gateways...)
	defer kv.Close()
	l := newULLoad()
	l.writeFirst(t, kv)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { // also when the test fails early
		stop()
		wg.Wait()
	}()
	l.run(ctx, &wg, kv)
	l.waitAcked(t, ulBefore, 30*time.Second, "before the kill")

	victim, primaries := ulVictim(t, procs)
	atKill := l.ackedN.Load()
	victim.kill9(t)
	killed := time.Now()
	t.Logf("killed %s (primary of %d partitions) after %d acknowledged writes under load", victim.id, primaries, atKill)
	l.waitAcked(t, atKill+ulAfter, 60*time.Second, "after the kill")
	t.Logf("%d writes acknowledged in the %v after the kill", l.ackedN.Load()-atKill, time.Since(killed).Round(time.Millisecond))
	stop()
	wg.Wait()

	var survivors []*kvProc
	for _, p := range procs {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	ulSettle(t, survivors)
	lost := l.check(t, gateways, "sync")
	t.Logf("sync: %d acknowledged writes under load (+%d initial), %d failed writes (retries: %d), lost acknowledged writes: %d; %v in all",
		l.ackedN.Load(), ulKeyCount, l.failedN.Load(), kv.Retried(), lost, time.Since(begin).Round(time.Millisecond))
	if lost > 0 {
		t.Errorf("sync replication lost %d acknowledged writes", lost)
	}
}

// ulReader reads random keys through one client and checks that it never
// returns a write number lower than one it already returned for the key.
type ulReader struct {
	c       *Client
	l       *ulLoad
	highest map[string]int // per key, the highest write number returned
	reads   int
	stale   int // ErrStale answers
	failed  int // errors other than ErrStale and ErrNotFound
	missing int // ErrNotFound (every key was written before the reads)
	lastErr error
	wrong   []string // reads that went back in time, or values never written
	// stopped ends the reads under load: a read it cuts is not counted.
	stopped context.Context
}

// read reads k once and records the answer.
func (r *ulReader) read(ctx context.Context, k string) error {
	v, err := r.c.Get(ctx, k)
	if err != nil && r.stopped != nil && r.stopped.Err() != nil {
		return nil
	}
	r.reads++
	switch {
	case errors.Is(err, ErrStale):
		r.stale++
		return nil
	case errors.Is(err, ErrNotFound):
		r.missing++
		return err
	case err != nil:
		r.failed++
		r.lastErr = err
		return err
	}
	seq, err := seqOf(k, v)
	if err != nil {
		r.wrong = append(r.wrong, err.Error())
		return err
	}
	if _, tried := r.l.of(k); seq > tried {
		r.wrong = append(r.wrong, fmt.Sprintf("%s: write %d returned, only %d were attempted", k, seq, tried))
	}
	if seq < r.highest[k] {
		r.wrong = append(r.wrong, fmt.Sprintf("%s: write %d returned after write %d", k, seq, r.highest[k]))
	}
	r.highest[k] = max(r.highest[k], seq)
	return nil
}

// TestAsyncKillUnderLoad: under async replication, kill -9 of the primary
// of the most partitions while 8 writers run may lose acknowledged writes,
// at most those the victim had not delivered; one client's reads never go
// back in time (ErrStale instead).
func TestAsyncKillUnderLoad(t *testing.T) {
	begin := time.Now()
	procs := ulStart(t, "async")
	gateways := []string{procs[0].http, procs[1].http, procs[2].http}
	kv := NewClient(gateways...)
	defer kv.Close()
	l := newULLoad()
	l.writeFirst(t, kv)

	// One reader client, from before the load to after the failover.
	readCtx, stopReads := context.WithCancel(context.Background())
	defer stopReads()
	reader := &ulReader{c: NewClient(gateways...), l: l, highest: map[string]int{}, stopped: readCtx}
	defer reader.c.Close()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for readCtx.Err() == nil {
			ctx, cancel := context.WithTimeout(readCtx, 15*time.Second)
			_ = reader.read(ctx, ulKey(rng.IntN(ulKeyCount))) // counted in reader
			cancel()
		}
	}()
	stopReader := func() {
		stopReads()
		<-readerDone
	}
	defer stopReader() // also when the test fails early

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { // also when the test fails early
		stop()
		wg.Wait()
	}()
	l.run(ctx, &wg, kv)
	l.waitAcked(t, ulBefore, 30*time.Second, "before the kill")

	victim, primaries := ulVictim(t, procs)
	l.phase.Store(1)
	atSample := l.ackedN.Load()
	st, err := kvStatus(victim.kv)
	if err != nil {
		t.Fatalf("GET /ready of %s: %v", victim.id, err)
	}
	queued := st.Pending
	victim.kill9(t)
	l.phase.Store(2)
	atKill := l.ackedN.Load()
	killed := time.Now()
	t.Logf("killed %s (primary of %d partitions) after %d acknowledged writes under load; just before, it had %d queued writes (oldest %s)",
		victim.id, primaries, atKill, queued, cmp.Or(st.PendingAge, "-"))
	l.waitAcked(t, atKill+ulAfter, 60*time.Second, "after the kill")
	t.Logf("%d writes acknowledged in the %v after the kill", l.ackedN.Load()-atKill, time.Since(killed).Round(time.Millisecond))
	stop()
	wg.Wait()

	var survivors []*kvProc
	for _, p := range procs {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	ulSettle(t, survivors)
	stopReader()
	t.Logf("reader under load: %d reads, %d ErrStale, %d failed (last error %v), %d not found",
		reader.reads, reader.stale, reader.failed, reader.lastErr, reader.missing)

	// The reader's final pass, once settled: a value at least as new as
	// what it returned before, or ErrStale; nothing else.
	reader.stopped = nil
	underLoad := struct{ reads, stale, failed, missing, wrong int }{reader.reads, reader.stale, reader.failed, reader.missing, len(reader.wrong)}
	final, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var finalErrs []string
	for i := range ulKeyCount {
		if err := reader.read(final, ulKey(i)); err != nil {
			finalErrs = append(finalErrs, fmt.Sprintf("%s: %v", ulKey(i), err))
		}
	}
	t.Logf("reader's final pass: %d keys, %d ErrStale, %d failed, %d not found",
		ulKeyCount, reader.stale-underLoad.stale, reader.failed-underLoad.failed, reader.missing-underLoad.missing)
	if len(finalErrs) > 0 {
		t.Errorf("reader's final pass after the failover: %d reads failed, e.g. %v", len(finalErrs), finalErrs[:min(5, len(finalErrs))])
	}
	if len(reader.wrong) > 0 {
		t.Errorf("the reader went back in time or read values never written: %d times, e.g. %v", len(reader.wrong), reader.wrong[:min(5, len(reader.wrong))])
	}

	lost := l.check(t, gateways, "async")
	window := max(l.window.Load(), atKill-atSample)
	t.Logf("lost acknowledged writes: %d (victim had %d queued writes just before the kill)", lost, queued)
	t.Logf("async: %d acknowledged writes under load (+%d initial), %d failed writes (retries: %d), %d acknowledged between the /ready sample and the kill (%d counted from the sample to kill9's return); reader: %d reads, %d ErrStale (client counter %d), %d failed; %v in all",
		l.ackedN.Load(), ulKeyCount, l.failedN.Load(), kv.Retried(), window, atKill-atSample, reader.reads, reader.stale, reader.c.Stale(), reader.failed, time.Since(begin).Round(time.Millisecond))
	if bound := int(window) + queued; lost > bound {
		t.Errorf("async lost %d acknowledged writes, more than the %d queued on %s plus the %d acknowledged from the sample to the kill", lost, queued, victim.id, window)
	}
}
