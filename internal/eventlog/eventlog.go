// Package eventlog keeps a bounded, in-memory log of the lifecycle events a
// node delivered, so the HTTP gateway can serve a server-sent-event stream
// that clients resume from the seq of the last event they saw.
//
// The log is a ring: old events are evicted to bound memory, and the log
// tracks a floor (the newest seq it can no longer vouch for) so a reader that
// asks to resume from before the floor is told events are missing (ErrGone)
// instead of silently skipping them.
package eventlog

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/messages"
)

// DefaultCapacity is the capacity New uses when given capacity <= 0.
const DefaultCapacity = 4096

// ErrGone means some events after the requested seq were delivered but are no
// longer retained (evicted, or delivered before this log started), so a reader
// cannot resume without a gap and must resynchronise from current state.
var ErrGone = errors.New("eventlog: events after the requested seq are no longer retained")

// ErrBadSeq is wrapped by every ParseSeq error, so callers (the gateway) can
// map all malformed ids to one 400 response.
var ErrBadSeq = errors.New("eventlog: malformed seq")

// entry caches an event's seq so lookups need no protobuf reflection.
type entry struct {
	seq actors.Seq
	ev  *messages.Event
}

// Log is a bounded, append-only log of delivered events, ordered by seq.
// It is safe for concurrent use; Append is meant for a single writer.
type Log struct {
	mu       sync.Mutex
	capacity int
	// buf grows up to capacity, then is used as a ring whose oldest entry is
	// at head. Growing lazily keeps a large capacity cheap on quiet nodes.
	buf      []entry
	head     int
	floor    actors.Seq
	last     actors.Seq
	appended bool // whether any event was ever appended (for the first-event floor raise)
	evicted  uint64
	// next is closed (and cleared) by the next Append; created lazily so
	// appends with no waiting readers allocate nothing.
	next chan struct{}
}

// New returns an empty log holding at most capacity events (DefaultCapacity
// if capacity <= 0). floor is the seq of the last event known to have been
// delivered before this log started; those events are not in the log, so
// readers asking for them get ErrGone.
func New(capacity int, floor actors.Seq) *Log {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Log{capacity: capacity, floor: floor, last: floor}
}

// NewComplete returns an empty log that has seen the cluster's whole history
// so far (the node that bootstrapped it): its first event does not raise the
// floor, so a reader may start from seq 0.
func NewComplete(capacity int) *Log {
	l := New(capacity, actors.Seq{})
	l.appended = true
	return l
}

// Append adds e at the end of the log and wakes readers waiting on a channel
// returned by After. Events must come in increasing seq order: an event whose
// seq is not greater than Last (including, before the first append, the
// initial floor) is ignored, as is a nil or empty Event, so replays and
// duplicates cannot break the ordering readers rely on. When the log is full
// the oldest event is evicted and the floor moves up to its seq.
func (l *Log) Append(e *messages.Event) {
	p := actors.Payload(e)
	if p == nil {
		return
	}
	seq := actors.SeqOf(p)

	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.Less(seq) {
		return
	}
	if !l.appended {
		l.appended = true
		// A node only sees events from its own registration on, so it cannot
		// vouch for anything before the first entry it delivered. Index 0 has
		// nothing representable below it (Raft indexes start at 1 anyway).
		if seq.Index > 0 {
			if before := (actors.Seq{Index: seq.Index - 1, Sub: math.MaxUint32}); l.floor.Less(before) {
				l.floor = before
			}
		}
	}
	if len(l.buf) < l.capacity {
		l.buf = append(l.buf, entry{seq: seq, ev: e})
	} else {
		// Full: overwrite the oldest; the log can no longer vouch for it.
		l.floor = l.buf[l.head].seq
		l.buf[l.head] = entry{seq: seq, ev: e}
		l.head = (l.head + 1) % l.capacity
		l.evicted++
	}
	l.last = seq
	if l.next != nil {
		close(l.next)
		l.next = nil
	}
}

// After returns the retained events with seq > since, oldest first, at most
// max of them (all if max <= 0), so a reader can page forward from the last
// seq it saw. next is never nil and is closed by the next successful Append,
// so a reader that got everything can wait for more without polling; reading
// events and next under one lock means no append can slip between them.
//
// If events after since may be missing (since is before the floor and before
// Last), After returns ErrGone (wrapped, naming the oldest retained seq) and
// no events. Note the first Append may raise the floor: a reader that took
// Last() from an empty log as its cursor then gets ErrGone even though it
// missed nothing this node delivered. The returned slice is a copy, but the
// events are shared and must not be modified.
func (l *Log) After(since actors.Seq, max int) (events []*messages.Event, next <-chan struct{}, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next == nil {
		l.next = make(chan struct{})
	}
	next = l.next

	if since.Less(l.floor) && since.Less(l.last) {
		if len(l.buf) == 0 {
			return nil, next, fmt.Errorf("%w: requested after %s, log empty with floor %s",
				ErrGone, Describe(since), Describe(l.floor))
		}
		return nil, next, fmt.Errorf("%w: requested after %s, oldest retained is %s",
			ErrGone, Describe(since), Describe(l.at(0).seq))
	}

	n := len(l.buf)
	// Seqs increase along the ring, so the first entry after since is found
	// by binary search over logical positions.
	start := sort.Search(n, func(i int) bool { return since.Less(l.at(i).seq) })
	count := n - start
	if max > 0 && count > max {
		count = max
	}
	if count == 0 {
		return nil, next, nil
	}
	events = make([]*messages.Event, count)
	for i := range events {
		events[i] = l.at(start + i).ev
	}
	return events, next, nil
}

// at returns the i-th oldest retained entry. Callers hold l.mu.
func (l *Log) at(i int) entry {
	// head is 0 until the ring is full, so this works while buf grows too.
	return l.buf[(l.head+i)%len(l.buf)]
}

// Last returns the seq of the last appended event, or the initial floor if
// nothing was appended: the point a new reader resumes from to see only new
// events.
func (l *Log) Last() actors.Seq {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Oldest returns the seq of the oldest retained event; ok is false if the log
// is empty.
func (l *Log) Oldest() (seq actors.Seq, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return actors.Seq{}, false
	}
	return l.at(0).seq, true
}

// Floor returns the newest seq the log cannot vouch for: After(since) with
// since before Floor (and before Last) returns ErrGone.
func (l *Log) Floor() actors.Seq {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.floor
}

// Evicted returns how many events were dropped to respect the capacity, for
// metrics and for sizing the capacity.
func (l *Log) Evicted() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evicted
}

// Len returns the number of retained events.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buf)
}

// Describe formats s for people: "entry N" for "after every event of entry
// N" (what ParseSeq reads from a bare index), else the seq.
func Describe(s actors.Seq) string {
	if s.Sub == math.MaxUint32 {
		return "entry " + strconv.FormatUint(s.Index, 10)
	}
	return FormatSeq(s)
}

// FormatSeq formats s as an SSE event id, "<index>.<sub>" in decimal.
func FormatSeq(s actors.Seq) string {
	b := make([]byte, 0, 32)
	b = strconv.AppendUint(b, s.Index, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(s.Sub), 10)
	return string(b)
}

// ParseSeq parses an SSE event id as written by FormatSeq, "<index>.<sub>".
// A bare "<index>" means after every event of that entry, Seq{index,
// math.MaxUint32}, so a client that only knows a Raft index can resume from
// it. Only plain decimal digits are accepted, without signs, spaces or
// leading zeros, so every Seq has exactly one dotted spelling. Errors wrap
// ErrBadSeq.
func ParseSeq(s string) (actors.Seq, error) {
	idx, sub, dotted := strings.Cut(s, ".")
	index, err := parseDecimal(idx, 64)
	if err != nil {
		return actors.Seq{}, fmt.Errorf("%w %q: index %v", ErrBadSeq, clip(s), err)
	}
	if !dotted {
		return actors.Seq{Index: index, Sub: math.MaxUint32}, nil
	}
	if strings.Contains(sub, ".") {
		return actors.Seq{}, fmt.Errorf("%w %q: more than one dot", ErrBadSeq, clip(s))
	}
	n, err := parseDecimal(sub, 32)
	if err != nil {
		return actors.Seq{}, fmt.Errorf("%w %q: sub %v", ErrBadSeq, clip(s), err)
	}
	return actors.Seq{Index: index, Sub: uint32(n)}, nil
}

// parseDecimal parses a canonical unsigned decimal of at most bits bits. It
// checks the digits itself so errors say what is wrong rather than echoing
// strconv's message.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" {
		return 0, errors.New("is empty")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			return 0, fmt.Errorf("has non-digit %q", c)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("has a leading zero")
	}
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("overflows uint%d", bits)
	}
	return v, nil
}

// clip bounds how much of untrusted input is echoed into an error message.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
