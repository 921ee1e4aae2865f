package actors

import (
	"sync/atomic"
	"time"
)

// Stats are counters shared by the actors of one node, read by metrics.
type Stats struct {
	EventsDelivered  [16]atomic.Uint64 // by kind bit position, per subscriber delivery
	EventsPublished  [16]atomic.Uint64 // by kind bit position, once per event
	EventsSuppressed atomic.Uint64     // replayed events not delivered again
	CallbackPanics   atomic.Uint64
	Rebalances       atomic.Uint64
	RebalanceNanos   atomic.Uint64 // sum of rebalance durations seen on this node
	Proposals        atomic.Uint64
	ProposalErrors   atomic.Uint64
	Subscribers      atomic.Int64
	// Mailbox lengths of the actors that receive from the FSM.
	StateQueue, PartitionsQueue, HooksQueue QueueGauge
	probeStats
}

func kindBit(k Kind) int {
	for i := 0; i < 16; i++ {
		if k == 1<<i {
			return i
		}
	}
	return 15
}

// Delivered returns the per-subscriber deliveries of kind k.
func (s *Stats) Delivered(k Kind) uint64 { return s.EventsDelivered[kindBit(k)].Load() }

// Published returns the number of events of kind k derived on this node.
func (s *Stats) Published(k Kind) uint64 { return s.EventsPublished[kindBit(k)].Load() }

// QueueGauge counts messages waiting in a mailbox (a protoactor mailbox middleware).
type QueueGauge struct{ n atomic.Int64 }

// Len returns the number of queued messages.
func (q *QueueGauge) Len() int64 { return q.n.Load() }

// MailboxStarted implements actor.MailboxMiddleware.
func (q *QueueGauge) MailboxStarted() {}

// MessagePosted implements actor.MailboxMiddleware.
func (q *QueueGauge) MessagePosted(interface{}) { q.n.Add(1) }

// MessageReceived implements actor.MailboxMiddleware.
func (q *QueueGauge) MessageReceived(interface{}) { q.n.Add(-1) }

// MailboxEmpty implements actor.MailboxMiddleware.
func (q *QueueGauge) MailboxEmpty() {}

// Probe statistics (failure detection).
type probeStats struct {
	Probes        atomic.Uint64
	ProbeFailures atomic.Uint64
	Removals      atomic.Uint64
	// ProbeLatency counts answered probes by latency bucket (upper bounds in
	// ProbeBuckets; the last bucket is +Inf).
	ProbeLatency [len(ProbeBuckets) + 1]atomic.Uint64
}

// ProbeBuckets are the upper bounds of the probe latency histogram.
var ProbeBuckets = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

func (s *Stats) recordProbe(ok bool, latency time.Duration) {
	s.Probes.Add(1)
	if !ok {
		s.ProbeFailures.Add(1)
		return
	}
	i := 0
	for i < len(ProbeBuckets) && latency > ProbeBuckets[i] {
		i++
	}
	s.ProbeLatency[i].Add(1)
}
