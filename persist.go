package clusterkit

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/actors"
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
