package eventlog

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/messages"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ev builds a NodeJoin event with the given seq.
func ev(index uint64, sub uint32) *messages.Event {
	return &messages.Event{Kind: &messages.Event_NodeJoin{NodeJoin: &messages.NodeJoin{Index: index, Sub: sub}}}
}

func sq(index uint64, sub uint32) actors.Seq { return actors.Seq{Index: index, Sub: sub} }

// seqs extracts the seqs of events, for comparison.
func seqs(t *testing.T, events []*messages.Event) []actors.Seq {
	t.Helper()
	out := make([]actors.Seq, len(events))
	for i, e := range events {
		p := actors.Payload(e)
		if p == nil {
			t.Fatalf("event %d has no payload", i)
		}
		out[i] = actors.SeqOf(p)
	}
	return out
}

func equalSeqs(a, b []actors.Seq) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// build returns a log with the given capacity and floor holding appended.
func build(capacity int, floor actors.Seq, appended ...actors.Seq) *Log {
	l := New(capacity, floor)
	for _, s := range appended {
		l.Append(ev(s.Index, s.Sub))
	}
	return l
}

func TestAfter(t *testing.T) {
	five := []actors.Seq{sq(10, 0), sq(10, 1), sq(11, 0), sq(12, 0), sq(12, 1)}
	cases := []struct {
		name     string
		capacity int
		floor    actors.Seq
		appended []actors.Seq
		since    actors.Seq
		max      int
		want     []actors.Seq
		gone     bool
	}{
		{name: "from just before first entry", capacity: 8, appended: five, since: sq(9, math.MaxUint32), want: five},
		{name: "from middle", capacity: 8, appended: five, since: sq(10, 1), want: five[2:]},
		{name: "from between seqs", capacity: 8, appended: five, since: sq(11, 7), want: five[3:]},
		{name: "from last", capacity: 8, appended: five, since: sq(12, 1), want: nil},
		{name: "from beyond last", capacity: 8, appended: five, since: sq(99, 0), want: nil},
		{name: "max limits from the oldest", capacity: 8, appended: five, since: sq(9, math.MaxUint32), max: 2, want: five[:2]},
		{name: "max limits from middle", capacity: 8, appended: five, since: sq(10, 0), max: 3, want: five[1:4]},
		{name: "max larger than available", capacity: 8, appended: five, since: sq(11, 0), max: 10, want: five[3:]},
		{name: "negative max means all", capacity: 8, appended: five, since: sq(9, math.MaxUint32), max: -1, want: five},
		{name: "from zero after first-event floor raise", capacity: 8, appended: five, since: sq(0, 0), gone: true},
		// Eviction: capacity 3 keeps the last three, floor = seq of the last evicted (10.1).
		{name: "evicted: since before floor", capacity: 3, appended: five, since: sq(10, 0), gone: true},
		{name: "evicted: since exactly floor", capacity: 3, appended: five, since: sq(10, 1), want: five[2:]},
		{name: "evicted: since after floor", capacity: 3, appended: five, since: sq(11, 0), want: five[3:]},
		{name: "evicted: since at last", capacity: 3, appended: five, since: sq(12, 1), want: nil},
		{name: "capacity 1", capacity: 1, appended: five, since: sq(12, 0), want: five[4:]},
		{name: "capacity 1 before floor", capacity: 1, appended: five, since: sq(11, 0), gone: true},
		// First-event floor raise: the log cannot vouch for what came before index 100.
		{name: "first event raises floor: far before", capacity: 8, appended: []actors.Seq{sq(100, 0), sq(101, 0)}, since: sq(50, 0), gone: true},
		{name: "first event raises floor: just before entry", capacity: 8, appended: []actors.Seq{sq(100, 0), sq(101, 0)}, since: sq(99, math.MaxUint32), want: []actors.Seq{sq(100, 0), sq(101, 0)}},
		{name: "first event raises floor: mid-entry start", capacity: 8, appended: []actors.Seq{sq(100, 3)}, since: sq(99, math.MaxUint32), want: []actors.Seq{sq(100, 3)}},
		// A higher initial floor is kept: the previous run vouched for up to it.
		{name: "initial floor above raise: since before", capacity: 8, floor: sq(100, 2), appended: []actors.Seq{sq(100, 3)}, since: sq(100, 1), gone: true},
		{name: "initial floor above raise: since at floor", capacity: 8, floor: sq(100, 2), appended: []actors.Seq{sq(100, 3)}, since: sq(100, 2), want: []actors.Seq{sq(100, 3)}},
		// Empty log: nothing delivered after the floor yet.
		{name: "empty: since at floor", capacity: 8, floor: sq(7, 1), since: sq(7, 1), want: nil},
		{name: "empty: since after floor", capacity: 8, floor: sq(7, 1), since: sq(9, 0), want: nil},
		{name: "empty: since before floor", capacity: 8, floor: sq(7, 1), since: sq(7, 0), gone: true},
		{name: "empty zero log from zero", capacity: 8, since: sq(0, 0), want: nil},
		{name: "default capacity", capacity: 0, appended: five, since: sq(9, math.MaxUint32), want: five},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := build(tc.capacity, tc.floor, tc.appended...)
			got, next, err := l.After(tc.since, tc.max)
			if next == nil {
				t.Fatal("next channel is nil")
			}
			if tc.gone {
				if !errors.Is(err, ErrGone) {
					t.Fatalf("After(%v) err = %v, want ErrGone", tc.since, err)
				}
				if got != nil {
					t.Fatalf("After(%v) returned %d events with ErrGone", tc.since, len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("After(%v): %v", tc.since, err)
			}
			if gs := seqs(t, got); !equalSeqs(gs, tc.want) {
				t.Fatalf("After(%v, %d) = %v, want %v", tc.since, tc.max, gs, tc.want)
			}
		})
	}
}

func TestGoneMessageNamesOldest(t *testing.T) {
	l := build(2, sq(0, 0), sq(5, 0), sq(6, 0), sq(7, 0))
	_, _, err := l.After(sq(1, 0), 0)
	if !errors.Is(err, ErrGone) {
		t.Fatalf("err = %v, want ErrGone", err)
	}
	if !strings.Contains(err.Error(), "6.0") {
		t.Fatalf("error %q does not name the oldest retained seq 6.0", err)
	}
}

func TestAccessorsAndEviction(t *testing.T) {
	l := New(3, sq(4, 2))
	if got := l.Last(); got != sq(4, 2) {
		t.Fatalf("Last of empty log = %v, want initial floor 4.2", got)
	}
	if _, ok := l.Oldest(); ok {
		t.Fatal("Oldest of empty log reported ok")
	}

	steps := []struct {
		add     actors.Seq
		len     int
		oldest  actors.Seq
		floor   actors.Seq
		evicted uint64
	}{
		// First event at index 10 raises the floor to 9.max (above 4.2).
		{add: sq(10, 0), len: 1, oldest: sq(10, 0), floor: sq(9, math.MaxUint32)},
		{add: sq(10, 1), len: 2, oldest: sq(10, 0), floor: sq(9, math.MaxUint32)},
		{add: sq(11, 0), len: 3, oldest: sq(10, 0), floor: sq(9, math.MaxUint32)},
		{add: sq(12, 0), len: 3, oldest: sq(10, 1), floor: sq(10, 0), evicted: 1},
		{add: sq(13, 0), len: 3, oldest: sq(11, 0), floor: sq(10, 1), evicted: 2},
		{add: sq(14, 0), len: 3, oldest: sq(12, 0), floor: sq(11, 0), evicted: 3},
		{add: sq(15, 0), len: 3, oldest: sq(13, 0), floor: sq(12, 0), evicted: 4},
	}
	for i, st := range steps {
		l.Append(ev(st.add.Index, st.add.Sub))
		if got := l.Len(); got != st.len {
			t.Fatalf("step %d: Len = %d, want %d", i, got, st.len)
		}
		if got, ok := l.Oldest(); !ok || got != st.oldest {
			t.Fatalf("step %d: Oldest = %v, %v, want %v", i, got, ok, st.oldest)
		}
		if got := l.Floor(); got != st.floor {
			t.Fatalf("step %d: Floor = %v, want %v", i, got, st.floor)
		}
		if got := l.Evicted(); got != st.evicted {
			t.Fatalf("step %d: Evicted = %d, want %d", i, got, st.evicted)
		}
		if got := l.Last(); got != st.add {
			t.Fatalf("step %d: Last = %v, want %v", i, got, st.add)
		}
		// The ring must stay in order across wrap-around.
		got, _, err := l.After(l.Floor(), 0)
		if err != nil {
			t.Fatalf("step %d: After(floor): %v", i, err)
		}
		if gs := seqs(t, got); len(gs) != st.len || gs[0] != st.oldest || gs[len(gs)-1] != st.add {
			t.Fatalf("step %d: After(floor) = %v", i, gs)
		}
	}
}

func TestAppendIgnoresNonIncreasingAndEmpty(t *testing.T) {
	cases := []struct {
		name  string
		floor actors.Seq
		add   []*messages.Event
		want  []actors.Seq
	}{
		{name: "duplicate", add: []*messages.Event{ev(5, 0), ev(5, 0)}, want: []actors.Seq{sq(5, 0)}},
		{name: "older sub", add: []*messages.Event{ev(5, 2), ev(5, 1), ev(5, 3)}, want: []actors.Seq{sq(5, 2), sq(5, 3)}},
		{name: "older index", add: []*messages.Event{ev(6, 0), ev(5, 9), ev(7, 0)}, want: []actors.Seq{sq(6, 0), sq(7, 0)}},
		{name: "at or below initial floor", floor: sq(5, 1), add: []*messages.Event{ev(5, 0), ev(5, 1), ev(5, 2)}, want: []actors.Seq{sq(5, 2)}},
		{name: "nil and empty events", add: []*messages.Event{nil, {}, ev(1, 0)}, want: []actors.Seq{sq(1, 0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := New(8, tc.floor)
			for _, e := range tc.add {
				l.Append(e)
			}
			got, _, err := l.After(l.Floor(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if gs := seqs(t, got); !equalSeqs(gs, tc.want) {
				t.Fatalf("retained %v, want %v", gs, tc.want)
			}
			if l.Len() != len(tc.want) {
				t.Fatalf("Len = %d, want %d", l.Len(), len(tc.want))
			}
			if last := l.Last(); last != tc.want[len(tc.want)-1] {
				t.Fatalf("Last = %v, want %v", last, tc.want[len(tc.want)-1])
			}
		})
	}
}

// TestEmptyLogTailReader pins a consequence of the first-event floor raise
// that tailing callers must handle: a cursor taken from an empty log's Last()
// is below the raised floor once the first event arrives.
func TestEmptyLogTailReader(t *testing.T) {
	for _, floor := range []actors.Seq{sq(0, 0), sq(40, 2)} {
		l := New(4, floor)
		cursor := l.Last()
		if _, _, err := l.After(cursor, 0); err != nil {
			t.Fatalf("floor %v: After(Last) on empty log: %v", floor, err)
		}
		l.Append(ev(50, 0))
		if _, _, err := l.After(cursor, 0); !errors.Is(err, ErrGone) {
			t.Fatalf("floor %v: After(old Last) after first event = %v, want ErrGone", floor, err)
		}
		got, _, err := l.After(l.Floor(), 0)
		if err != nil || !equalSeqs(seqs(t, got), []actors.Seq{sq(50, 0)}) {
			t.Fatalf("floor %v: After(Floor) = %v, %v", floor, seqs(t, got), err)
		}
	}
}

func TestAfterCopiesSlice(t *testing.T) {
	l := build(4, sq(0, 0), sq(1, 0), sq(2, 0))
	got, _, err := l.After(l.Floor(), 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("After(floor) = %d events, %v", len(got), err)
	}
	got[0] = nil
	again, _, _ := l.After(l.Floor(), 0)
	if len(again) != 2 || again[0] == nil {
		t.Fatal("After returned the log's own storage")
	}
}

// closedWithin reports whether ch is closed within d, without sleeping when it is.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}

func TestNextClosesOnAppend(t *testing.T) {
	l := New(4, sq(0, 0))
	_, next, err := l.After(sq(0, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-next:
		t.Fatal("next closed before any append")
	default:
	}

	// An ignored append is not news, so it must not wake readers.
	l.Append(ev(3, 0))
	_, next, _ = l.After(sq(3, 0), 0)
	l.Append(ev(2, 0))
	select {
	case <-next:
		t.Fatal("next closed by an ignored append")
	default:
	}

	// A reader blocked on next wakes when an event arrives from another goroutine.
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Append(ev(4, 0))
	}()
	if !closedWithin(next, 10*time.Second) {
		t.Fatal("next not closed after Append")
	}
	<-done
	got, next2, err := l.After(sq(3, 0), 0)
	if err != nil || !equalSeqs(seqs(t, got), []actors.Seq{sq(4, 0)}) {
		t.Fatalf("After(3.0) = %v, %v", seqs(t, got), err)
	}
	if next2 == next {
		t.Fatal("After returned an already closed channel")
	}

	// Every reader holding the same channel is woken, including on ErrGone.
	l2 := build(1, sq(0, 0), sq(10, 0), sq(11, 0))
	_, a, _ := l2.After(sq(11, 0), 0)
	_, b, err := l2.After(sq(1, 0), 0)
	if !errors.Is(err, ErrGone) {
		t.Fatalf("err = %v, want ErrGone", err)
	}
	l2.Append(ev(12, 0))
	for i, ch := range []<-chan struct{}{a, b} {
		if !closedWithin(ch, 10*time.Second) {
			t.Fatalf("reader %d not woken", i)
		}
	}
}

// TestConcurrent runs one writer against followers that resume with After
// and wait on next, as the SSE handler will; run with -race.
func TestConcurrent(t *testing.T) {
	const total = 2000
	cases := []struct {
		name     string
		capacity int
		max      int
		mayGone  bool
	}{
		{name: "large capacity", capacity: 2 * total, max: 7},
		{name: "all at once", capacity: 2 * total, max: 0},
		// Small ring: slow readers may fall behind and must resync from the floor.
		{name: "small capacity", capacity: 8, max: 3, mayGone: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := New(tc.capacity, sq(0, 0))
			final := sq(total, 1)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for r := 0; r < 4; r++ {
				wg.Go(func() {
					// Not 0.0: the first event (index 1) raises the floor to
					// 0.max, and After(0.0) would then rightly be ErrGone.
					since := sq(0, math.MaxUint32)
					for since != final {
						got, next, err := l.After(since, tc.max)
						if errors.Is(err, ErrGone) && tc.mayGone {
							since = l.Floor()
							continue
						}
						if err != nil {
							errs <- err
							return
						}
						for _, e := range got {
							s := actors.SeqOf(actors.Payload(e)) // not seqs(t, ...): no t.Fatal off the test goroutine
							if !since.Less(s) {
								errs <- errors.New("events out of order: " + FormatSeq(s) + " after " + FormatSeq(since))
								return
							}
							since = s
						}
						if tc.max > 0 && len(got) > tc.max {
							errs <- errors.New("max exceeded")
							return
						}
						if len(got) == 0 {
							select {
							case <-next:
							case <-stop:
								errs <- errors.New("reader stopped at " + FormatSeq(since))
								return
							}
						}
					}
				})
			}
			for i := uint64(1); i <= total; i++ {
				l.Append(ev(i, 0))
				l.Append(ev(i, 1))
				_ = l.Len()
				_, _ = l.Oldest()
			}
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			if !closedWithin(finished, 30*time.Second) {
				close(stop)
				<-finished
			}
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if l.Last() != final {
				t.Fatalf("Last = %v, want %v", l.Last(), final)
			}
		})
	}
}

func TestFormatSeq(t *testing.T) {
	cases := []struct {
		in   actors.Seq
		want string
	}{
		{sq(0, 0), "0.0"},
		{sq(123, 4), "123.4"},
		{sq(math.MaxUint64, math.MaxUint32), "18446744073709551615.4294967295"},
	}
	for _, tc := range cases {
		if got := FormatSeq(tc.in); got != tc.want {
			t.Errorf("FormatSeq(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := ParseSeq(tc.want); err != nil || back != tc.in {
			t.Errorf("ParseSeq(%q) = %v, %v, want %v", tc.want, back, err, tc.in)
		}
	}
}

func TestParseSeq(t *testing.T) {
	cases := []struct {
		in      string
		want    actors.Seq
		wantErr string // substring of the error; empty means success
	}{
		{in: "0.0", want: sq(0, 0)},
		{in: "123.4", want: sq(123, 4)},
		{in: "123", want: sq(123, math.MaxUint32)},
		{in: "0", want: sq(0, math.MaxUint32)},
		{in: "18446744073709551615.4294967295", want: sq(math.MaxUint64, math.MaxUint32)},
		{in: "18446744073709551615", want: sq(math.MaxUint64, math.MaxUint32)},

		{in: "", wantErr: "index is empty"},
		{in: ".", wantErr: "index is empty"},
		{in: ".4", wantErr: "index is empty"},
		{in: "123.", wantErr: "sub is empty"},
		{in: "1.2.3", wantErr: "more than one dot"},
		{in: "1..2", wantErr: "more than one dot"},
		{in: "+1.2", wantErr: "non-digit '+'"},
		{in: "1.+2", wantErr: "non-digit '+'"},
		{in: "-1.2", wantErr: "non-digit '-'"},
		{in: "1.-2", wantErr: "non-digit '-'"},
		{in: " 1.2", wantErr: "non-digit ' '"},
		{in: "1.2 ", wantErr: "non-digit ' '"},
		{in: "1 .2", wantErr: "non-digit ' '"},
		{in: "1_000.2", wantErr: "non-digit '_'"},
		{in: "0x10.2", wantErr: "non-digit 'x'"},
		{in: "1e3", wantErr: "non-digit 'e'"},
		{in: "abc", wantErr: "non-digit 'a'"},
		{in: "１.2", wantErr: "non-digit"}, // fullwidth digit
		{in: "01.2", wantErr: "leading zero"},
		{in: "1.02", wantErr: "leading zero"},
		{in: "00", wantErr: "leading zero"},
		{in: "18446744073709551616.0", wantErr: "overflows uint64"},
		{in: "99999999999999999999999.0", wantErr: "overflows uint64"},
		{in: "1.4294967296", wantErr: "overflows uint32"},
		{in: strings.Repeat("9", 200), wantErr: "overflows uint64"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSeq(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSeq(%q): %v", tc.in, err)
				}
				if got != tc.want {
					t.Fatalf("ParseSeq(%q) = %v, want %v", tc.in, got, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrBadSeq) {
				t.Fatalf("ParseSeq(%q) err = %v, want ErrBadSeq", tc.in, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseSeq(%q) err = %q, want it to mention %q", tc.in, err, tc.wantErr)
			}
			if got != (actors.Seq{}) {
				t.Fatalf("ParseSeq(%q) returned %v with an error", tc.in, got)
			}
		})
	}
}

func TestParseSeqErrorClipsInput(t *testing.T) {
	_, err := ParseSeq(strings.Repeat("x", 10000))
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error not clipped: %d bytes", len(err.Error()))
	}
}

func FuzzParseSeq(f *testing.F) {
	for _, s := range []string{
		"", "0", "0.0", "123.4", "123", ".", "1.", ".1", "1.2.3", "+1.2", "-1", " 1.2",
		"01.2", "18446744073709551615.4294967295", "18446744073709551616.0", "1.4294967296",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := ParseSeq(s)
		if err != nil {
			if !errors.Is(err, ErrBadSeq) {
				t.Fatalf("ParseSeq(%q) err %v does not wrap ErrBadSeq", s, err)
			}
			return
		}
		formatted := FormatSeq(seq)
		back, err := ParseSeq(formatted)
		if err != nil {
			t.Fatalf("ParseSeq(FormatSeq(%v)) = %q: %v", seq, formatted, err)
		}
		if back != seq {
			t.Fatalf("round trip %q -> %v -> %q -> %v", s, seq, formatted, back)
		}
		// Canonical: a dotted id that parses is exactly how FormatSeq spells it.
		if strings.Contains(s, ".") && formatted != s {
			t.Fatalf("ParseSeq accepted non-canonical %q (canonical %q)", s, formatted)
		}
	})
}

// A complete log (the bootstrap node's) vouches for everything from seq 0.
func TestNewCompleteServesFromZero(t *testing.T) {
	l := NewComplete(8)
	l.Append(&messages.Event{Kind: &messages.Event_NodeJoin{NodeJoin: &messages.NodeJoin{Index: 5}}})
	got, _, err := l.After(actors.Seq{}, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("After(0) on a complete log: %d events, %v", len(got), err)
	}
	// An ordinary log started at zero cannot vouch for entries 1-4.
	o := New(8, actors.Seq{})
	o.Append(&messages.Event{Kind: &messages.Event_NodeJoin{NodeJoin: &messages.NodeJoin{Index: 5}}})
	if _, _, err := o.After(actors.Seq{}, 0); !errors.Is(err, ErrGone) {
		t.Fatalf("After(0) on a joiner's log: %v, want ErrGone", err)
	}
}
