package clusterkit

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/nodefile"
)

// aliveInterval is how often a node with a DataDir records that it is alive,
// so the OfflineDuration of its NodeRejoin after a crash is right to about
// this much.
const aliveInterval = time.Second

// persister makes the last delivered event seq durable before the events are
// delivered (write-ahead), so that a crash never delivers an event twice.
// Requests are merged: one fsync covers every event that arrived while the
// previous one ran (group commit), so delivery keeps up with any write rate.
type persister struct {
	ck   *ClusterKit
	mu   sync.Mutex
	want actors.Seq
	pid  *actor.PID
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newPersister(ck *ClusterKit, from actors.Seq) *persister {
	p := &persister{ck: ck, want: from, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(from)
	return p
}

// request asks for seq to be made durable; hooks is told when it is.
func (p *persister) request(seq actors.Seq, hooks *actor.PID) {
	p.mu.Lock()
	if p.want.Less(seq) {
		p.want = seq
	}
	p.pid = hooks
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *persister) run(written actors.Seq) {
	defer close(p.done)
	tick := time.NewTicker(aliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.wake:
		case <-tick.C:
		case <-p.stop:
			return
		}
		p.mu.Lock()
		want, pid := p.want, p.pid
		p.mu.Unlock()
		if err := p.ck.writeProgress(want); err != nil {
			// Delivering without the record risks a replay after a crash;
			// holding the events back would lose them for good.
			p.ck.log.Error("cannot record delivered events; delivering anyway", "error", err)
		}
		if written.Less(want) && pid != nil {
			p.ck.system.Root.Send(pid, &actors.Persisted{Seq: want})
			written = want
		}
	}
}

// close stops the persister and waits for it.
func (p *persister) close() {
	close(p.stop)
	<-p.done
}

// writeProgress records last as the last delivered event, and now as the
// last time this node was alive.
func (ck *ClusterKit) writeProgress(last actors.Seq) error {
	ck.progressMu.Lock()
	defer ck.progressMu.Unlock()
	return ck.progress.Write(nodefile.Progress{Index: last.Index, Sub: last.Sub, AliveUnixNano: time.Now().UnixNano()})
}

// snapshotCheck is how often a node with a DataDir checks whether it should
// take a snapshot.
const snapshotCheck = 250 * time.Millisecond

// snapshotter takes a snapshot as soon as more than SnapshotThreshold entries
// were applied since the last one. Raft checks only every SnapshotInterval,
// so under a high write rate the log a restart must read and replay would
// grow with the rate; this bounds it by the threshold.
type snapshotter struct {
	stop chan struct{}
	done chan struct{}
}

func (ck *ClusterKit) startSnapshotter() *snapshotter {
	s := &snapshotter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(snapshotCheck)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			ck.snapshotIfBehind(ck.opts.Raft.SnapshotThreshold)
		}
	}()
	return s
}

func (s *snapshotter) close() {
	close(s.stop)
	<-s.done
}

// snapshotIfBehind takes a snapshot when more than threshold entries were
// applied since the last one.
func (ck *ClusterKit) snapshotIfBehind(threshold uint64) {
	last, _ := strconv.ParseUint(ck.raft.Stats()["last_snapshot_index"], 10, 64)
	if ck.fsm.AppliedIndex() <= last+threshold {
		return
	}
	// The data directory may have been removed under the node (a test's
	// cleanup, an operator): a snapshot would create it again.
	if _, err := os.Stat(ck.opts.DataDir); err != nil {
		ck.log.Debug("data directory unusable; snapshot skipped", "data_dir", ck.opts.DataDir, "error", err)
		return
	}
	start := time.Now()
	if err := ck.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		ck.log.Debug("snapshot failed", "error", err)
		return
	}
	ck.log.Debug("snapshot taken", "applied", ck.fsm.AppliedIndex(), "previous", last, "took", time.Since(start).Round(time.Microsecond))
}
