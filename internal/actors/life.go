package actors

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// Membership states of a node's own life (Membership.State).
const (
	// MemberJoining: not admitted yet (starting, or rejoining as a new life).
	MemberJoining = "joining"
	// MemberActive: the committed membership has this life.
	MemberActive = "member"
	// MemberRemoved: this life was removed and the node stays out (it
	// rejoins on its own only after a removal by failure detection, with
	// AutoRejoin on).
	MemberRemoved = "removed"
	// MemberFenced: a newer life of this node ID is a member: this process
	// is stale and stays out.
	MemberFenced = "fenced"
	// MemberRefused: the cluster refused this node for good (see Reason).
	MemberRefused = "refused"
)

// Membership is what a node knows of its own place in the cluster.
type Membership struct {
	State string
	// Incarnation of the current life (0 until admitted).
	Incarnation uint64
	// For removed, fenced and refused: why, who decided and at which index.
	Reason    string
	RemovedBy string
	Index     uint64
}

// Life is the process's current life in the cluster. A life starts with a
// fresh random nonce (at start, and again when a removed node rejoins); the
// cluster assigns its incarnation when it admits it. Safe for concurrent use.
type Life struct {
	nonce atomic.Uint64
	// admitted is the highest incarnation this process was ever admitted
	// with: a member of the same ID with a higher one is a newer process.
	admitted atomic.Uint64

	mu     sync.Mutex
	status Membership
	notify func(Membership)
}

// NewLife returns a life with a fresh nonce, in the joining state. notify
// (optional) is called on every change of the membership status, from the
// state actor: it must be quick (a node records its admission in its node
// file there: one small atomic write per life).
func NewLife(notify func(Membership)) *Life {
	l := &Life{notify: notify, status: Membership{State: MemberJoining}}
	l.nonce.Store(randomNonce())
	return l
}

// Nonce is the current life's nonce.
func (l *Life) Nonce() uint64 { return l.nonce.Load() }

// Admitted is the highest incarnation this process held (0 if none).
func (l *Life) Admitted() uint64 { return l.admitted.Load() }

// Status returns the current membership status.
func (l *Life) Status() Membership {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// set changes the status and reports whether it changed.
func (l *Life) set(m Membership) bool {
	l.mu.Lock()
	changed := l.status != m
	l.status = m
	notify := l.notify
	l.mu.Unlock()
	if m.State == MemberActive && m.Incarnation > l.admitted.Load() {
		l.admitted.Store(m.Incarnation)
	}
	if changed && notify != nil {
		notify(m)
	}
	return changed
}

// renew starts a new life: a new nonce, joining again.
func (l *Life) renew() {
	l.nonce.Store(randomNonce())
	l.set(Membership{State: MemberJoining})
}

func randomNonce() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		if n := binary.LittleEndian.Uint64(b[:]); n != 0 {
			return n // 0 means "no nonce" on the wire
		}
	}
}
