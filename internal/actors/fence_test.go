package actors

import (
	"testing"
	"time"
)

// A refusal as stale is moot when the newer life is this process (a
// restarted process dials with its previous incarnation until it applies
// its own admission), waited on while the view has not shown that, and
// believed after fenceGrace.
func TestStaleWait(t *testing.T) {
	cases := []struct {
		name       string
		own, cur   uint64
		known      bool
		refusedFor time.Duration
		want       time.Duration
	}{
		{"the current life is this process", 7, 7, true, 0, -1},
		{"… even long after the refusal", 7, 7, true, time.Hour, -1},
		{"view behind: wait", 7, 3, true, time.Second, fenceGrace - time.Second},
		{"ID unknown to the view: wait", 7, 0, false, 0, fenceGrace},
		{"another life after the grace: fence", 7, 3, true, fenceGrace, 0},
		{"still unknown after the grace: fence", 7, 0, false, 2 * fenceGrace, 0},
	}
	for _, c := range cases {
		if got := staleWait(c.own, c.cur, c.known, c.refusedFor); (got < 0) != (c.want < 0) || (c.want >= 0 && got != c.want) {
			t.Errorf("%s: staleWait = %v, want %v", c.name, got, c.want)
		}
	}
}
