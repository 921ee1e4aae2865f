package actors

import (
	"sync/atomic"
	"time"
)

// Stats are counters shared by the actors of one node, read by metrics.
type Stats struct {
	EventsDelivered  [16]atomic.Uint64 // by kind bit position, per subscriber delivery
	EventsPublished  [16]atomic.Uint64 // by kind bit position, once per event
	EventsSuppressed [16]atomic.Uint64 // by kind: replayed events not delivered again
	CallbackPanics   atomic.Uint64
	Rebalances       atomic.Uint64
	// RebalanceDuration: from the start on the leader to the commit here.
	RebalanceDuration Histogram
	// Hand-off: copies HandoffTimeout cancelled or forced (decided by this
	// node as leader), and how long each acknowledged copy took (from the
	// entry that added the owner to the one that made it ready).
	HandoffTimeouts, HandoffsForced atomic.Uint64
	HandoffDuration                 Histogram
	Proposals                       atomic.Uint64
	ProposalErrors                  atomic.Uint64
	Subscribers                     atomic.Int64
	// Derived is the index of the last entry the partitions actor turned
	// into events (none or some), Emitted the index of the last event it
	// handed to the dispatcher: delivery has caught up with the log when
	// Derived reaches the applied index and the last delivered seq Emitted.
	Derived, Emitted atomic.Uint64
	// Membership: voter changes decided by this node as leader, and new
	// lives this node started after finding itself removed.
	VoterPromotions, VoterDemotions, Rejoins atomic.Uint64
	// tolerance is autopilot's failure tolerance plus one (0: unknown,
	// that is, this node does not lead).
	tolerance atomic.Int64
	// Mailbox lengths of the actors that receive from the FSM.
	StateQueue, PartitionsQueue, HooksQueue QueueGauge
	probeStats
}

// FailureTolerance is how many voters may fail with the cluster keeping its
// quorum, by the leader's autopilot; -1 when unknown (this node does not lead).
func (s *Stats) FailureTolerance() int { return int(s.tolerance.Load()) - 1 }

func (s *Stats) setFailureTolerance(n int) { s.tolerance.Store(int64(n) + 1) }

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

// Suppressed returns the replayed events of kind k not delivered again.
func (s *Stats) Suppressed(k Kind) uint64 { return s.EventsSuppressed[kindBit(k)].Load() }

// SuppressedTotal returns the replayed events of every kind not delivered again.
func (s *Stats) SuppressedTotal() uint64 {
	var n uint64
	for i := range s.EventsSuppressed {
		n += s.EventsSuppressed[i].Load()
	}
	return n
}

// Buckets are the upper bounds of the duration histograms.
var Buckets = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// Histogram counts durations by bucket (upper bounds in Buckets; the last
// count is +Inf), lock-free so the actors can record on their hot paths.
type Histogram struct {
	counts [len(Buckets) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(Buckets) && d > Buckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the per-bucket counts (not cumulative), their total and
// the sum of the observed durations.
func (h *Histogram) Snapshot() (counts []uint64, total uint64, sum time.Duration) {
	counts = make([]uint64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	return counts, total, time.Duration(h.sum.Load())
}

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
	// ProbeLatency holds the latency of answered probes.
	ProbeLatency Histogram
}

func (s *Stats) recordProbe(ok bool, latency time.Duration) {
	s.Probes.Add(1)
	if !ok {
		s.ProbeFailures.Add(1)
		return
	}
	s.ProbeLatency.Observe(latency)
}
