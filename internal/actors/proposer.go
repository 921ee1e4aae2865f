package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// proposer hands commands to raft outside any actor: raft.Apply may wait for
// room in raft's queue and a future's Error() waits for the commit, and an
// actor must never block on either. One goroutine enqueues in order; another
// waits for the futures in order (raft commits in order) and replies; a
// third pushes the commit index to the followers after forwarded writes.
type proposer struct {
	r       *raft.Raft
	timeout time.Duration
	reply   func(pid *actor.PID, res *messages.ProposeResult)

	mu     sync.Mutex
	queue  []proposal
	closed bool
	wake   chan struct{}
	kick   chan struct{} // a forwarded write committed: push (see pushLoop)
	stop   chan struct{}
	wg     sync.WaitGroup
}

type proposal struct {
	data    []byte
	replyTo *actor.PID
	future  raft.ApplyFuture
	push    bool // forwarded by a follower: push the commit index once done
}

func newProposer(r *raft.Raft, timeout time.Duration, reply func(*actor.PID, *messages.ProposeResult)) *proposer {
	p := &proposer{r: r, timeout: timeout, reply: reply, wake: make(chan struct{}, 1), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	inflight := make(chan proposal, 4096)
	p.wg.Add(3)
	go p.enqueueLoop(inflight)
	go p.waitLoop(inflight)
	go p.pushLoop()
	return p
}

// propose queues cmd; it never blocks.
func (p *proposer) propose(cmd *messages.Command, replyTo *actor.PID) {
	p.enqueue(cmd, replyTo, false)
}

// proposeForwarded queues cmd that a follower forwarded: once it commits,
// the followers learn so at once (pushLoop), so that the follower, which
// answers its caller only after applying the write itself, does not wait
// for Raft's next append.
func (p *proposer) proposeForwarded(cmd *messages.Command, replyTo *actor.PID) {
	p.enqueue(cmd, replyTo, true)
}

func (p *proposer) enqueue(cmd *messages.Command, replyTo *actor.PID, push bool) {
	data, err := raftfsm.Encode(cmd)
	if err != nil {
		p.reply(replyTo, resultOf(0, err))
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.reply(replyTo, resultOf(0, raft.ErrRaftShutdown))
		return
	}
	p.queue = append(p.queue, proposal{data: data, replyTo: replyTo, push: push})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// commit proposes cmd and waits for its result, for the goroutines that work
// for an actor off its mailbox (admission, autopilot, quorum-loss recovery).
// The error is the wait's (timeout, ctx); the command's own outcome is in
// the result (ResultError). When ctx ends first the command may still commit.
func (p *proposer) commit(ctx context.Context, system *actor.ActorSystem, cmd *messages.Command, timeout time.Duration) (*messages.ProposeResult, error) {
	fut := actor.NewFuture(system, timeout)
	p.propose(cmd, fut.PID())
	type answer struct {
		res any
		err error
	}
	done := make(chan answer, 1)
	go func() { // ends when the future resolves or times out
		res, err := fut.Result()
		done <- answer{res, err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			return nil, a.err
		}
		pr, _ := a.res.(*messages.ProposeResult)
		return pr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *proposer) enqueueLoop(inflight chan<- proposal) {
	defer p.wg.Done()
	defer close(inflight)
	for {
		select {
		case <-p.stop:
			p.failQueued()
			return
		case <-p.wake:
		}
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		p.mu.Unlock()
		for _, pr := range batch {
			pr.future = p.r.Apply(pr.data, p.timeout)
			// Never drop a future raft accepted: waitLoop must see it resolve.
			inflight <- pr
		}
	}
}

func (p *proposer) failQueued() {
	p.mu.Lock()
	batch := p.queue
	p.queue, p.closed = nil, true
	p.mu.Unlock()
	for _, pr := range batch {
		p.reply(pr.replyTo, resultOf(0, raft.ErrRaftShutdown))
	}
}

func (p *proposer) waitLoop(inflight <-chan proposal) {
	defer p.wg.Done()
	for pr := range inflight {
		if err := pr.future.Error(); err != nil {
			p.reply(pr.replyTo, resultOf(0, err))
			continue
		}
		if pr.push {
			select {
			case p.kick <- struct{}{}:
			default: // a push is already due: it covers this commit too
			}
		}
		res, _ := pr.future.Response().(*raftfsm.ApplyResult)
		if res == nil {
			p.reply(pr.replyTo, &messages.ProposeResult{Index: pr.future.Index()})
			continue
		}
		out := resultOf(res.Index, res.Err)
		p.reply(pr.replyTo, out)
	}
}

// pushLoop tells the followers of forwarded writes' commits at once. A
// follower learns that an entry committed only from the leader's next
// append, which comes with the next entry or after CommitTimeout (20 to 40
// ms with the default): a lone writer on a follower made about 31 writes a
// second. An empty barrier entry goes out at once and carries the commit
// index. One barrier at a time: the appends of the writes that commit
// meanwhile carry the index too, so under load barriers are rare and ride
// in the same appends as the writes.
func (p *proposer) pushLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		// Its outcome does not matter: a leader that lost leadership
		// has nothing to push. Raft resolves it (committed or refused)
		// while it runs, and close runs while Raft does.
		_ = p.r.Barrier(p.timeout).Error()
	}
}

// close stops accepting proposals and waits, at most `wait`, for the ones
// already handed to raft. Raft must still be running: a future that sits in
// raft's apply queue when raft shuts down is never resolved
// (hashicorp/raft#498), while a running raft resolves every future (commit,
// not-leader, or leadership lost). It reports whether everything finished.
func (p *proposer) close(wait time.Duration) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return true
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// resultOf converts an outcome to the wire form.
func resultOf(index uint64, err error) *messages.ProposeResult {
	res := &messages.ProposeResult{Index: index}
	if err != nil {
		res.Error = err.Error()
		res.Code = raftfsm.Code(err)
		switch err {
		case raft.ErrNotLeader, raft.ErrLeadershipTransferInProgress:
			// Refused before it entered the log: retrying is safe.
			res.Code = CodeNotLeader
		case raft.ErrLeadershipLost:
			// In the log, not known to be committed: a new leader may
			// still commit it, so a retry could apply it twice.
			res.Code = CodeUnknown
		case raft.ErrRaftShutdown:
			res.Code = CodeShutdown
		case raft.ErrEnqueueTimeout:
			res.Code = CodeTimeout
		}
	}
	return res
}

// Error codes of ProposeResult beyond raftfsm's.
const (
	CodeNotLeader = "not_leader" // not in the log: retry elsewhere
	CodeShutdown  = "shutdown"
	CodeTimeout   = "timeout"
	CodeUnknown   = "outcome_unknown" // may or may not commit: do not retry blindly
	CodeRefused   = "forward_refused" // the leader refused it before its log: not committed
)

// ErrForwardRefused means the leader refused a forwarded command before it
// reached its log (a token the leader does not accept, another cluster):
// nothing was committed, and retrying as is will be refused again.
var ErrForwardRefused = errors.New("the leader refused the forwarded command")

// ErrOutcomeUnknown means a command may or may not have been committed (the
// leader lost leadership with it in its log, or the connection to the leader
// failed after the request was sent). Retrying blindly could apply it twice.
var ErrOutcomeUnknown = errors.New("the command may or may not have been committed")

// ResultError turns a ProposeResult back into an error (nil on success).
func ResultError(r *messages.ProposeResult) error {
	if r.GetError() == "" && r.GetCode() == "" {
		return nil
	}
	switch r.GetCode() {
	case CodeNotLeader:
		return raft.ErrNotLeader
	case CodeShutdown:
		return raft.ErrRaftShutdown
	case CodeTimeout:
		return raft.ErrEnqueueTimeout
	case CodeUnknown:
		return fmt.Errorf("%w: %s", ErrOutcomeUnknown, r.GetError())
	case CodeRefused:
		return fmt.Errorf("%w: %s", ErrForwardRefused, r.GetError())
	}
	return raftfsm.FromCode(r.GetCode(), r.GetError())
}
