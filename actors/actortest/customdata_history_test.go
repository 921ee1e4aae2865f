package actortest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/internal/tmpcheck"
)

// A recorded history of custom-data operations, checked for linearizability
// with porcupine and for lost acknowledged writes. Shared by the
// linearizability test and the fault suite.
//
// Every written value is unique ("<what>/c<client>-<n>"), so a value read
// (or delivered in a CustomDataChange event) names the write that produced
// it: that is how a write whose outcome is unknown to its client is resolved
// (committed, at which version), and how a write applied twice, or a
// compare-and-set reported as failed but applied, is caught with a precise
// message before porcupine even runs.

const (
	cdRead = iota // GetCustomDataLinearizable
	cdSet         // SetCustomDataContext
	cdCAS         // CompareAndSetCustomDataContext
)

type cdInput struct {
	Kind     int
	Key      string
	Value    string // cdSet, cdCAS
	Expected uint64 // cdCAS
}

const (
	cdOK       = iota
	cdNotFound // a read: no such key
	cdMismatch // a compare-and-set: ErrVersionMismatch, nothing changed
	cdUnknown  // a write that failed otherwise: it may or may not have committed
)

type cdOutput struct {
	Result int
	Value  string // a read's value
	// A read's version, or an acknowledged write's new version. For a write
	// whose outcome is unknown: the version its value was seen at, if it was
	// seen (so it committed there), else 0.
	Version uint64
}

// cdState is one key's state in the model.
type cdState struct {
	Value   string
	Version uint64 // 0 (with Exact): no such key
	// Exact is false after a write whose outcome is unknown and that nobody
	// observed: the key holds Value at some version greater than Version.
	Exact bool
}

func (s cdState) exists() bool { return !s.Exact || s.Version > 0 }

// cdModel is a single key: a value with a version that is the Raft index of
// the last write, so versions of successive writes strictly grow.
var cdModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(cdInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return cdState{Exact: true} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(cdState), input.(cdInput), output.(cdOutput)
		// applied is the state after a write that committed at version v.
		applied := func(v uint64) (bool, any) {
			return v > s.Version, cdState{Value: in.Value, Version: v, Exact: true}
		}
		switch in.Kind {
		case cdRead:
			switch {
			case out.Result == cdNotFound:
				return !s.exists(), s
			case !s.exists() || s.Value != out.Value:
				return false, s
			case s.Exact:
				return out.Version == s.Version, s
			default: // the read tells the version
				return out.Version > s.Version, cdState{Value: s.Value, Version: out.Version, Exact: true}
			}
		case cdSet:
			switch {
			case out.Result == cdOK || out.Result == cdUnknown && out.Version != 0:
				return applied(out.Version)
			case out.Result == cdUnknown: // if it takes effect here, it sets an unknown version
				return true, cdState{Value: in.Value, Version: s.Version, Exact: false}
			}
			return false, s
		case cdCAS:
			// matches: the key is at the expected version; mayMatch: it may be.
			matches := s.Exact && s.Version == in.Expected
			mayMatch := matches || !s.Exact && in.Expected > s.Version
			switch {
			case out.Result == cdOK || out.Result == cdUnknown && out.Version != 0:
				if !mayMatch {
					return false, s
				}
				return applied(out.Version)
			case out.Result == cdMismatch:
				return !matches, s
			case out.Result == cdUnknown && matches:
				return true, cdState{Value: in.Value, Version: s.Version, Exact: false}
			case out.Result == cdUnknown: // it failed here (or, if the key's version is unknown, either way unseen)
				return true, s
			}
			return false, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(cdInput), output.(cdOutput)
		var res string
		switch out.Result {
		case cdOK:
			res = fmt.Sprintf("v%d", out.Version)
			if in.Kind == cdRead {
				res = fmt.Sprintf("%q@v%d", out.Value, out.Version)
			}
		case cdNotFound:
			res = "not found"
		case cdMismatch:
			res = "version mismatch"
		case cdUnknown:
			res = "unknown"
			if out.Version != 0 {
				res = fmt.Sprintf("unknown (seen at v%d)", out.Version)
			}
		}
		switch in.Kind {
		case cdRead:
			return fmt.Sprintf("get(%s) -> %s", in.Key, res)
		case cdSet:
			return fmt.Sprintf("set(%s, %q) -> %s", in.Key, in.Value, res)
		default:
			return fmt.Sprintf("cas(%s, v%d, %q) -> %s", in.Key, in.Expected, in.Value, res)
		}
	},
	DescribeState: func(state any) string {
		s := state.(cdState)
		switch {
		case !s.exists():
			return "(none)"
		case s.Exact:
			return fmt.Sprintf("%q@v%d", s.Value, s.Version)
		}
		return fmt.Sprintf("%q@v>%d", s.Value, s.Version)
	},
}

// cdHistory records operations as clients issue them.
type cdHistory struct {
	start time.Time

	mu           sync.Mutex
	ops          []porcupine.Operation
	droppedReads int
}

func newCDHistory() *cdHistory { return &cdHistory{start: time.Now()} }

func (h *cdHistory) now() int64 { return int64(time.Since(h.start)) }

// cdEvent is a CustomDataChange a node delivered (a write: clients do not
// delete).
type cdEvent struct {
	Key, Value string
	Version    uint64
}

// cdStream is the CustomDataChange events one node process delivered, in
// order.
type cdStream struct {
	Name string
	mu   sync.Mutex
	evs  []cdEvent
}

func (s *cdStream) add(e cdEvent) {
	s.mu.Lock()
	s.evs = append(s.evs, e)
	s.mu.Unlock()
}

func (s *cdStream) events() []cdEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evs)
}

// caughtUp waits until s delivered an event at version v or later.
func (s *cdStream) caughtUp(v uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		evs := s.events()
		if v == 0 || len(evs) > 0 && evs[len(evs)-1].Version >= v {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *cdHistory) add(client int, in cdInput, call int64, out cdOutput, ret int64) {
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.mu.Unlock()
}

// writeOutcome classifies a write's result. A write that failed for any
// reason but a version mismatch may have committed: it gets an unknown
// output and returns at the end of time.
func writeOutcome(version uint64, err error, ret int64) (cdOutput, int64) {
	switch {
	case err == nil:
		return cdOutput{Result: cdOK, Version: version}, ret
	case errors.Is(err, clusterkit.ErrVersionMismatch):
		return cdOutput{Result: cdMismatch}, ret
	}
	return cdOutput{Result: cdUnknown}, math.MaxInt64
}

func (h *cdHistory) set(ctx context.Context, ck *clusterkit.ClusterKit, client int, key, value string) (uint64, error) {
	call := h.now()
	v, err := ck.SetCustomData(ctx, key, []byte(value))
	out, ret := writeOutcome(v, err, h.now())
	h.add(client, cdInput{Kind: cdSet, Key: key, Value: value}, call, out, ret)
	return v, err
}

func (h *cdHistory) cas(ctx context.Context, ck *clusterkit.ClusterKit, client int, key string, expected uint64, value string) (uint64, error) {
	call := h.now()
	v, err := ck.CompareAndSetCustomData(ctx, key, expected, []byte(value))
	out, ret := writeOutcome(v, err, h.now())
	h.add(client, cdInput{Kind: cdCAS, Key: key, Value: value, Expected: expected}, call, out, ret)
	return v, err
}

// read is a linearizable read; it returns version 0 for a missing key. A
// failed read is left out of the history (it observed nothing).
func (h *cdHistory) read(ctx context.Context, ck *clusterkit.ClusterKit, client int, key string) (string, uint64, error) {
	call := h.now()
	value, version, err := ck.GetCustomDataLinearizable(ctx, key)
	ret := h.now()
	switch {
	case err == nil:
		h.add(client, cdInput{Kind: cdRead, Key: key}, call, cdOutput{Result: cdOK, Value: string(value), Version: version}, ret)
	case errors.Is(err, clusterkit.ErrKeyNotFound):
		h.add(client, cdInput{Kind: cdRead, Key: key}, call, cdOutput{Result: cdNotFound}, ret)
		return "", 0, nil
	default:
		h.mu.Lock()
		h.droppedReads++
		h.mu.Unlock()
	}
	return string(value), version, err
}

func returned(ret int64) string {
	if ret == math.MaxInt64 {
		return "never"
	}
	return time.Duration(ret).Round(time.Millisecond).String()
}

// cdFinal is a linearizable read made after every client stopped.
type cdFinal struct {
	Node    int
	Key     string
	Value   string
	Version uint64 // 0: not found
}

// cdReport is what verify found.
type cdReport struct {
	Ops, Reads, Sets, CASes, Mismatches, Unknown, Resolved, Uncommitted, DroppedReads int
	Check                                                                             time.Duration
	Result                                                                            porcupine.CheckResult
	Problems                                                                          []string
}

func (r cdReport) String() string {
	return fmt.Sprintf("%d ops (%d reads, %d sets, %d CAS of which %d mismatched; %d writes indeterminate: %d seen committed, %d not committed before the final reads; %d failed reads dropped); porcupine: %s in %v",
		r.Ops, r.Reads, r.Sets, r.CASes, r.Mismatches, r.Unknown, r.Resolved, r.Uncommitted, r.DroppedReads, r.Result, r.Check.Round(time.Millisecond))
}

// verify checks the history:
//   - every value seen (by a read, or in any node's CustomDataChange events)
//     was written by one write that did not fail with ErrVersionMismatch, at
//     one version only: its acknowledged version if it was acknowledged;
//   - every event stream's versions strictly grow;
//   - no acknowledged write is missing from the final reads;
//   - porcupine finds the history linearizable within timeout (Unknown is
//     reported in Result, not as a problem).
//
// A write whose outcome its client does not know is resolved from what was
// seen: seen at version v, it committed there. If cover is not nil, it is the
// event stream of a node that subscribed before the first write and has
// delivered every write up to the final reads' versions: a write it does not
// hold did not commit before the final reads, so it is left out of the
// history (as if it came after everything, which it may). Without cover,
// unseen writes of unknown outcome stay in, and porcupine may need longer.
func (h *cdHistory) verify(final []cdFinal, streams []*cdStream, cover *cdStream, timeout time.Duration) cdReport {
	h.mu.Lock()
	ops := slices.Clone(h.ops)
	rep := cdReport{Ops: len(ops), DroppedReads: h.droppedReads}
	h.mu.Unlock()
	problem := func(format string, args ...any) {
		if len(rep.Problems) < 20 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
	}

	seen := map[[2]string]map[uint64]bool{}   // (key, value) -> versions it was seen at
	readAt := map[[2]string]map[uint64]bool{} // (key, value) -> versions reads returned
	note := func(m map[[2]string]map[uint64]bool, k [2]string, v uint64) {
		if m[k] == nil {
			m[k] = map[uint64]bool{}
		}
		m[k][v] = true
	}
	covered := map[uint64]cdEvent{}
	var coverLast uint64
	for _, s := range streams {
		var last uint64
		for _, e := range s.events() {
			if e.Version <= last {
				problem("%s delivered the CustomDataChange of version %d after that of version %d", s.Name, e.Version, last)
			}
			last = e.Version
			note(seen, [2]string{e.Key, e.Value}, e.Version)
			if s == cover {
				covered[e.Version], coverLast = e, e.Version
			}
		}
	}
	writes := map[[2]string]int{} // (key, value) -> index in ops
	for i, op := range ops {
		in, out := op.Input.(cdInput), op.Output.(cdOutput)
		switch in.Kind {
		case cdRead:
			rep.Reads++
			if out.Result == cdOK {
				k := [2]string{in.Key, out.Value}
				note(seen, k, out.Version)
				note(readAt, k, out.Version)
				if cover != nil && out.Version <= coverLast && covered[out.Version] != (cdEvent{in.Key, out.Value, out.Version}) {
					problem("a read returned %s=%q at version %d, but %s delivered no such event", in.Key, out.Value, out.Version, cover.Name)
				}
			}
			continue
		case cdSet:
			rep.Sets++
		case cdCAS:
			rep.CASes++
		}
		switch out.Result {
		case cdMismatch:
			rep.Mismatches++
		case cdUnknown:
			rep.Unknown++
		}
		k := [2]string{in.Key, in.Value}
		if _, dup := writes[k]; dup {
			panic("test bug: value " + in.Value + " written twice")
		}
		writes[k] = i
	}

	// What was seen, and the writes it resolves.
	for _, k := range slices.SortedFunc(maps.Keys(seen), func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) }) {
		versions := slices.Sorted(maps.Keys(seen[k]))
		i, ok := writes[k]
		if !ok {
			problem("key %q: value %q seen at version(s) %v, but no client wrote it", k[0], k[1], versions)
			continue
		}
		op := &ops[i]
		in, out := op.Input.(cdInput), op.Output.(cdOutput)
		desc := fmt.Sprintf("client %d: %s [called at %v, returned at %v; reads saw its value at %v]", op.ClientId,
			cdModel.DescribeOperation(in, out), time.Duration(op.Call).Round(time.Millisecond), returned(op.Return), slices.Sorted(maps.Keys(readAt[k])))
		switch out.Result {
		case cdMismatch:
			problem("%s failed with ErrVersionMismatch, yet its value was committed at version(s) %v", desc, versions)
		case cdOK:
			if len(versions) != 1 || versions[0] != out.Version {
				problem("%s was acknowledged at version %d, but its value was committed at version(s) %v (applied more than once?)", desc, out.Version, versions)
			}
		case cdUnknown:
			if len(versions) != 1 {
				problem("%s (outcome unknown to its client) was committed at versions %v (applied more than once)", desc, versions)
				continue
			}
			out.Version = versions[0]
			op.Output = out
			rep.Resolved++
		}
	}

	// No acknowledged write lost: each final read is at or past the
	// acknowledged write with the highest version of its key; if at it, it is
	// that write's value; if past it, it is a write whose outcome was unknown
	// (which may land any time, even after later acknowledged writes).
	lastAcked := map[string]porcupine.Operation{}
	for _, op := range ops {
		in, out := op.Input.(cdInput), op.Output.(cdOutput)
		if in.Kind == cdRead || out.Result != cdOK {
			continue
		}
		if last, ok := lastAcked[in.Key]; !ok || out.Version > last.Output.(cdOutput).Version {
			lastAcked[in.Key] = op
		}
	}
	var maxFinal uint64
	for _, f := range final {
		maxFinal = max(maxFinal, f.Version)
		last, ok := lastAcked[f.Key]
		if !ok {
			continue
		}
		lin, lout := last.Input.(cdInput), last.Output.(cdOutput)
		desc := cdModel.DescribeOperation(lin, lout)
		switch {
		case f.Version == 0:
			problem("node-%d: key %q not found at the end, though %s was acknowledged", f.Node+1, f.Key, desc)
		case f.Version < lout.Version:
			problem("node-%d: key %q is %q at version %d at the end: %s, acknowledged, is lost", f.Node+1, f.Key, f.Value, f.Version, desc)
		case f.Version == lout.Version && f.Value != lin.Value:
			problem("node-%d: key %q is %q at version %d at the end, but %s wrote that version", f.Node+1, f.Key, f.Value, f.Version, desc)
		case f.Version > lout.Version:
			if i, ok := writes[[2]string{f.Key, f.Value}]; !ok || ops[i].Output.(cdOutput).Result != cdUnknown {
				problem("node-%d: key %q is %q at version %d at the end, past the last acknowledged write %s, but not by a write of unknown outcome", f.Node+1, f.Key, f.Value, f.Version, desc)
			}
		}
	}

	// Left out: writes of unknown outcome that did not commit before the
	// final reads (cover holds every write up to those).
	if cover != nil && coverLast >= maxFinal {
		kept := ops[:0]
		for _, op := range ops {
			in, out := op.Input.(cdInput), op.Output.(cdOutput)
			if in.Kind != cdRead && out.Result == cdUnknown && out.Version == 0 {
				rep.Uncommitted++
				continue
			}
			kept = append(kept, op)
		}
		ops = kept
	}

	start := time.Now()
	rep.Result = porcupine.CheckOperationsTimeout(cdModel, ops, timeout)
	rep.Check = time.Since(start)
	if rep.Result == porcupine.Illegal {
		_, info := porcupine.CheckOperationsVerbose(cdModel, ops, timeout)
		path := "(could not write the visualization)"
		if f, err := os.CreateTemp(tmpcheck.ArtifactDir(), "clusterkit-customdata-*.html"); err == nil {
			f.Close()
			if err := porcupine.VisualizePath(cdModel, info, f.Name()); err == nil {
				path = f.Name()
			}
		}
		problem("porcupine: the history is not linearizable; visualization: %s", path)
	}
	return rep
}

// cdKeys lists the keys clients use.
var cdKeys = []string{"k0", "k1", "k2"}

// cdClientOp is one client operation: a blind write, a read-modify-write
// (a linearizable read, then a compare-and-set on the version it returned, of
// a counter one higher), or a linearizable read. n numbers the client's
// writes, so every value is unique. It returns false if an operation failed
// without a definite answer (the client then backs off a little).
func cdClientOp(ctx context.Context, h *cdHistory, ck *clusterkit.ClusterKit, client int, n *int, key string, roll int) bool {
	definite := func(err error) bool {
		return err == nil || errors.Is(err, clusterkit.ErrVersionMismatch) || errors.Is(err, clusterkit.ErrKeyNotFound)
	}
	switch {
	case roll < 3:
		*n++
		_, err := h.set(ctx, ck, client, key, fmt.Sprintf("set/c%d-%d", client, *n))
		return definite(err)
	case roll < 7:
		value, version, err := h.read(ctx, ck, client, key)
		if err != nil {
			return false
		}
		var count int
		fmt.Sscanf(value, "%d/", &count)
		*n++
		_, err = h.cas(ctx, ck, client, key, version, fmt.Sprintf("%d/c%d-%d", count+1, client, *n))
		return definite(err)
	default:
		_, _, err := h.read(ctx, ck, client, key)
		return definite(err)
	}
}

// cdCover returns the first of candidates (event streams of nodes that
// subscribed before the first write and never restarted) that delivered
// every write up to the final reads' versions, waiting up to timeout for
// each, or nil.
func cdCover(candidates []*cdStream, final []cdFinal, timeout time.Duration) *cdStream {
	var maxFinal uint64
	for _, f := range final {
		maxFinal = max(maxFinal, f.Version)
	}
	for _, s := range candidates {
		if s.caughtUp(maxFinal, timeout) {
			return s
		}
	}
	return nil
}

// cdFinalReads reads every key linearizably on every live node, recording
// the reads in h (as client base+node).
func cdFinalReads(t testing.TB, c *actortest.Cluster, h *cdHistory, base int) []cdFinal {
	t.Helper()
	var out []cdFinal
	for _, i := range c.Live() {
		for _, key := range cdKeys {
			var f cdFinal
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				f = cdFinal{Node: i, Key: key}
				f.Value, f.Version, err = h.read(ctx, c.Node(i), base+i, key)
				cancel()
				if err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("node-%d: final linearizable read of %q: %v", i+1, key, err)
			}
			out = append(out, f)
		}
	}
	return out
}

// cdSame waits until every live node holds the same custom data (keys,
// values, versions) right after a barrier through the leader, and describes
// the difference if they still do not agree at the deadline. A write of
// unknown outcome may still land meanwhile, hence the retries.
func cdSame(c *actortest.Cluster, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		var diff string
		var ref map[string]string
		refNode := -1
		for _, i := range c.Live() {
			ck := c.Node(i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := ck.Barrier(ctx)
			cancel()
			if err != nil {
				diff = fmt.Sprintf("node-%d: barrier: %v", i+1, err)
				break
			}
			data := map[string]string{}
			for _, k := range ck.ListCustomDataKeys() {
				v, ver, err := ck.GetCustomData(k)
				if err == nil {
					data[k] = fmt.Sprintf("%q@v%d", v, ver)
				}
			}
			if refNode < 0 {
				ref, refNode = data, i
			} else if !maps.Equal(ref, data) {
				diff = fmt.Sprintf("node-%d holds %s\nnode-%d holds %s", refNode+1, describeData(ref), i+1, describeData(data))
				break
			}
		}
		if diff == "" || time.Now().After(deadline) {
			return diff
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeData(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s=%s", k, m[k])
	}
	return "{" + b.String() + " }"
}

// cdGuard keeps client operations off a node while the test stops it (Kill,
// Leave): a custom-data call that is running while its node stops can panic
// inside clusterkit (proposeCtx asserts the state actor's answer is a
// *messages.ProposeResult, but a stopped actor answers with an
// *actor.DeadLetterResponse). Clients of a killed node count as having died
// with it; writes forwarded by other nodes to a killed leader stay in flight.
type cdGuard struct{ mu [16]sync.RWMutex }

// use runs f on node i if it is alive, and reports whether it did.
func (g *cdGuard) use(c *actortest.Cluster, i int, f func(ck *clusterkit.ClusterKit)) bool {
	g.mu[i].RLock()
	defer g.mu[i].RUnlock()
	if !c.Alive(i) {
		return false
	}
	f(c.Node(i))
	return true
}

// stopping runs f (which stops node i) once no client operation runs on i.
func (g *cdGuard) stopping(i int, f func()) {
	g.mu[i].Lock()
	defer g.mu[i].Unlock()
	f()
}

// TestCustomDataModel checks the model on small histories, so that a
// violation the checker reports is one.
func TestCustomDataModel(t *testing.T) {
	op := func(client int, in cdInput, call int64, out cdOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	set := func(v string) cdInput { return cdInput{Kind: cdSet, Key: "k", Value: v} }
	cas := func(exp uint64, v string) cdInput { return cdInput{Kind: cdCAS, Key: "k", Value: v, Expected: exp} }
	get := cdInput{Kind: cdRead, Key: "k"}
	ok := func(v uint64) cdOutput { return cdOutput{Result: cdOK, Version: v} }
	read := func(v string, ver uint64) cdOutput { return cdOutput{Result: cdOK, Value: v, Version: ver} }
	never := int64(math.MaxInt64)
	cases := []struct {
		name string
		want bool
		ops  []porcupine.Operation
	}{
		{"write, read, compare-and-set", true, []porcupine.Operation{
			op(0, set("a"), 0, ok(5), 10), op(1, get, 11, read("a", 5), 12),
			op(1, cas(5, "b"), 13, ok(7), 14), op(0, get, 15, read("b", 7), 16),
			op(0, cas(5, "c"), 17, cdOutput{Result: cdMismatch}, 18)}},
		{"stale read", false, []porcupine.Operation{
			op(0, set("a"), 0, ok(5), 10), op(1, get, 11, cdOutput{Result: cdNotFound}, 12)}},
		{"read at another version", false, []porcupine.Operation{
			op(0, set("a"), 0, ok(5), 10), op(1, get, 11, read("a", 4), 12)}},
		{"mismatch at the expected version", false, []porcupine.Operation{
			op(0, set("a"), 0, ok(5), 1), op(1, cas(5, "b"), 2, cdOutput{Result: cdMismatch}, 3)}},
		{"compare-and-set of a missing key", true, []porcupine.Operation{
			op(0, cas(0, "a"), 0, ok(3), 1), op(1, cas(0, "b"), 2, cdOutput{Result: cdMismatch}, 3)}},
		{"versions go back", false, []porcupine.Operation{
			op(0, set("a"), 0, ok(5), 1), op(1, set("b"), 2, ok(3), 3)}},
		{"concurrent writes in either order", true, []porcupine.Operation{
			op(0, set("a"), 0, ok(9), 10), op(1, set("b"), 1, ok(8), 11), op(2, get, 12, read("a", 9), 13)}},
		{"unknown write seen committed", true, []porcupine.Operation{
			op(0, set("a"), 0, cdOutput{Result: cdUnknown, Version: 9}, never), op(1, get, 5, read("a", 9), 6)}},
		{"unseen unknown compare-and-set explains a mismatch", true, []porcupine.Operation{
			op(0, set("a"), 0, ok(5), 1), op(1, cas(5, "x"), 2, cdOutput{Result: cdUnknown}, never),
			op(2, cas(5, "y"), 3, cdOutput{Result: cdMismatch}, 4),
			op(0, set("z"), 5, ok(20), 6), op(2, get, 7, read("z", 20), 8)}},
		{"nothing explains a mismatch", false, []porcupine.Operation{
			op(0, set("a"), 0, ok(5), 1), op(2, cas(5, "y"), 3, cdOutput{Result: cdMismatch}, 4),
			op(0, set("z"), 5, ok(20), 6), op(2, get, 7, read("z", 20), 8)}},
		{"an unknown write cannot precede its call", false, []porcupine.Operation{
			op(1, get, 0, read("a", 9), 1), op(0, set("a"), 2, cdOutput{Result: cdUnknown, Version: 9}, never)}},
	}
	for _, tc := range cases {
		if got := porcupine.CheckOperations(cdModel, tc.ops); got != tc.want {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
