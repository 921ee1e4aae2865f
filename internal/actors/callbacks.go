package actors

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/messages"
)

// CallbackRegistry knows the node's Go callbacks and which of them is in a
// call, so that Stop can refuse them new events, wait for the calls in
// progress and name those that do not return. A call costs the delivery
// path a clock read and a few atomic operations.
type CallbackRegistry struct {
	base     time.Time // call start times are measured from it (monotonic)
	stopping atomic.Bool
	wake     chan struct{} // a call ended after StopCalls

	mu  sync.Mutex
	all []*callbackState
}

// NewCallbackRegistry returns an empty registry.
func NewCallbackRegistry() *CallbackRegistry {
	return &CallbackRegistry{base: time.Now(), wake: make(chan struct{}, 1)}
}

// RunningCallback is a callback in a call.
type RunningCallback struct {
	// Hook is the function that registered the callback (OnPartitionChange,
	// ...), or its registered name when it has none.
	Hook string
	// Name is the callback actor's name (callback-<n>-<name>).
	Name string
	PID  *actor.PID
	// For is how long the call has been running.
	For time.Duration
	// Seq is the seq of the event the call is on.
	Seq Seq
}

type callbackState struct {
	reg        *CallbackRegistry
	name, hook string
	pid        *actor.PID // set once spawned; guarded by reg.mu

	// since is when the current call started, as time since reg.base plus
	// one; 0 between calls.
	since atomic.Int64
	event atomic.Pointer[messages.Event] // of the current or last call
	// queue follows the events waiting in the callback's mailbox.
	queue subscriberQueue
}

// subscriberQueue is the callback actor's mailbox middleware: it keeps the
// local dispatch time of every event the callback has not finished, so a
// scrape can tell how far behind the subscriber is. protoactor reports a
// message received once the actor has handled it.
type subscriberQueue struct {
	mu      sync.Mutex
	pending []time.Time // FIFO, in delivery order
}

func (q *subscriberQueue) MailboxStarted() {}
func (q *subscriberQueue) MailboxEmpty()   {}

func (q *subscriberQueue) MessagePosted(m interface{}) {
	if _, ok := actor.UnwrapEnvelopeMessage(m).(*messages.Event); ok {
		q.mu.Lock()
		q.pending = append(q.pending, time.Now())
		q.mu.Unlock()
	}
}

func (q *subscriberQueue) MessageReceived(m interface{}) {
	if _, ok := actor.UnwrapEnvelopeMessage(m).(*messages.Event); ok {
		q.mu.Lock()
		if len(q.pending) > 0 {
			q.pending = q.pending[1:]
			if len(q.pending) == 0 {
				q.pending = nil // let the backing array go
			}
		}
		q.mu.Unlock()
	}
}

// lag is how many events the callback has not finished and how long the
// oldest of them has waited since its dispatch.
func (q *subscriberQueue) lag(now time.Time) (backlog int, lag time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) > 0 {
		lag = now.Sub(q.pending[0])
	}
	return len(q.pending), lag
}

// SubscriberLag is how far one Go callback (an On... callback or an Events
// iteration) is behind the events dispatched to it.
type SubscriberLag struct {
	// Name is the callback actor's name (callback-<n>-<hook>).
	Name string
	// Backlog is the number of events dispatched to it and not finished
	// (the one in a call and those waiting).
	Backlog int
	// Lag is how long the oldest of them has waited since this node
	// dispatched it (0 when it is idle).
	Lag time.Duration
}

// Lags reports every registered callback's backlog and lag.
func (r *CallbackRegistry) Lags() []SubscriberLag {
	now := time.Now()
	r.mu.Lock()
	all := slices.Clone(r.all)
	r.mu.Unlock()
	out := make([]SubscriberLag, 0, len(all))
	for _, s := range all {
		b, l := s.queue.lag(now)
		out = append(out, SubscriberLag{Name: s.name, Backlog: b, Lag: l})
	}
	return out
}

// add registers a callback actor about to be spawned. A nil registry
// tracks nothing.
func (r *CallbackRegistry) add(name, hook string) *callbackState {
	if r == nil {
		r = NewCallbackRegistry() // private: nobody ever reads it
	}
	s := &callbackState{reg: r, name: name, hook: hook}
	r.mu.Lock()
	r.all = append(r.all, s)
	r.mu.Unlock()
	return s
}

func (s *callbackState) setPID(pid *actor.PID) {
	s.reg.mu.Lock()
	s.pid = pid
	s.reg.mu.Unlock()
}

// begin marks the start of a call on e; false means the node is stopping
// and the call must not happen. It publishes the call before it reads the
// stop flag, and StopCalls sets the flag before it looks at the calls: a
// call is either refused or seen by Stop.
func (s *callbackState) begin(e *messages.Event) bool {
	s.event.Store(e)
	s.since.Store(int64(time.Since(s.reg.base)) + 1)
	if s.reg.stopping.Load() {
		s.end()
		return false
	}
	return true
}

// drop forgets a removed callback.
func (s *callbackState) drop() {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	s.reg.all = slices.DeleteFunc(s.reg.all, func(o *callbackState) bool { return o == s })
}

// end marks the end of a call.
func (s *callbackState) end() {
	s.since.Store(0)
	if s.reg.stopping.Load() {
		select {
		case s.reg.wake <- struct{}{}:
		default:
		}
	}
}

// Len is the number of registered callbacks.
func (r *CallbackRegistry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

// StopCalls makes every callback skip the events it has not started yet,
// now and for good.
func (r *CallbackRegistry) StopCalls() { r.stopping.Store(true) }

// Running returns the callbacks in a call.
func (r *CallbackRegistry) Running() []RunningCallback {
	now := int64(time.Since(r.base)) + 1
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []RunningCallback
	for _, s := range r.all {
		since := s.since.Load()
		if since == 0 {
			continue
		}
		rc := RunningCallback{Hook: s.hook, Name: s.name, PID: s.pid, For: time.Duration(now - since)}
		if rc.Hook == "" {
			rc.Hook = s.name
		}
		if e := s.event.Load(); e != nil {
			if p := Payload(e); p != nil {
				rc.Seq = SeqOf(p)
			}
		}
		out = append(out, rc)
	}
	return out
}

// Idle returns the callback actors that are not in a call.
func (r *CallbackRegistry) Idle() []*actor.PID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*actor.PID
	for _, s := range r.all {
		if s.pid != nil && s.since.Load() == 0 {
			out = append(out, s.pid)
		}
	}
	return out
}

// WaitIdle waits, after StopCalls, until no callback is in a call or until
// ctx ends, and returns those still in one.
func (r *CallbackRegistry) WaitIdle(ctx context.Context) []RunningCallback {
	for {
		running := r.Running()
		if len(running) == 0 {
			return nil
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			return r.Running()
		}
	}
}
