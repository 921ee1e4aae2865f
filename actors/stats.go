package actors

import (
	"sync/atomic"
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
	LastEventIndex   atomic.Uint64
	// Mailbox lengths of the actors that receive from the FSM.
	StateQueue, PartitionsQueue, HooksQueue QueueGauge
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
