package actors

import (
	"sync"
	"time"
)

// PeerTracker is the leader's evidence about each peer beyond the ping: since
// when Raft's heartbeats to it fail (hashicorp/raft's Failed/Resumed
// heartbeat observations) and when a probe last reached it for real. It is
// shared by the state actor (which feeds Raft's observations), the probers
// and autopilot, and reset when leadership changes: another leader's
// evidence is not this one's. Safe for concurrent use.
type PeerTracker struct {
	mu      sync.Mutex
	failing map[string]time.Time // peer -> first heartbeat failure since the last success
	seen    map[string]time.Time // peer -> last probe it answered
}

// NewPeerTracker returns an empty tracker.
func NewPeerTracker() *PeerTracker {
	return &PeerTracker{failing: map[string]time.Time{}, seen: map[string]time.Time{}}
}

// heartbeatFailed records a failed Raft heartbeat to id.
func (t *PeerTracker) heartbeatFailed(id string, at time.Time) {
	t.mu.Lock()
	if _, ok := t.failing[id]; !ok {
		t.failing[id] = at
	}
	t.mu.Unlock()
}

// heartbeatOK records that Raft reaches id again (or afresh: a re-added
// server gets a new replication, which never reports "resumed").
func (t *PeerTracker) heartbeatOK(id string) {
	t.mu.Lock()
	delete(t.failing, id)
	t.mu.Unlock()
}

// probeOK records that id answered a probe at at.
func (t *PeerTracker) probeOK(id string, at time.Time) {
	t.mu.Lock()
	if at.After(t.seen[id]) {
		t.seen[id] = at
	}
	t.mu.Unlock()
}

// FailingFor returns how long Raft's heartbeats to id have failed without
// a success (0 when they do not fail).
func (t *PeerTracker) FailingFor(id string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	since, ok := t.failing[id]
	if !ok {
		return 0
	}
	return max(now.Sub(since), time.Nanosecond)
}

// LastSeen returns when id last answered this leader's probe.
func (t *PeerTracker) LastSeen(id string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.seen[id]
	return at, ok
}

// forget drops what is known of id (it left the configuration).
func (t *PeerTracker) forget(id string) {
	t.mu.Lock()
	delete(t.failing, id)
	delete(t.seen, id)
	t.mu.Unlock()
}

// reset forgets everything (leadership changed).
func (t *PeerTracker) reset() {
	t.mu.Lock()
	clear(t.failing)
	clear(t.seen)
	t.mu.Unlock()
}
