package actortest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// DefaultTimeout is how long Expect* wait when no timeout is given.
const DefaultTimeout = 5 * time.Second

// Probe is an actor that records every message it receives, for assertions.
type Probe struct {
	t      testing.TB
	system *actor.ActorSystem
	pid    *actor.PID
	ch     chan any
}

// NewProbe spawns a probe in system; it is stopped when the test ends.
func NewProbe(t testing.TB, system *actor.ActorSystem) *Probe {
	t.Helper()
	p := &Probe{t: t, system: system, ch: make(chan any, 1<<16)}
	p.pid = system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		}
		select {
		case p.ch <- ctx.Message():
		default:
			p.t.Errorf("actortest: probe %s dropped a message: more than %d unread", p.pid, cap(p.ch))
		}
	}))
	t.Cleanup(func() { _ = system.Root.StopFuture(p.pid).Wait() })
	return p
}

// PID is the probe's address: subscribe it, or send to it.
func (p *Probe) PID() *actor.PID { return p.pid }

func timeoutOf(timeout []time.Duration) time.Duration {
	if len(timeout) > 0 {
		return timeout[0]
	}
	return DefaultTimeout
}

// Receive returns the next message, or false after the timeout.
func (p *Probe) Receive(timeout time.Duration) (any, bool) {
	select {
	case m := <-p.ch:
		return m, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Next returns the next message and fails the test if none arrives in time.
func (p *Probe) Next(timeout ...time.Duration) any {
	p.t.Helper()
	d := timeoutOf(timeout)
	m, ok := p.Receive(d)
	if !ok {
		p.t.Fatalf("actortest: probe %s received nothing within %v", p.pid.Id, d)
	}
	return m
}

// ExpectMsg fails the test unless the next message equals want (proto.Equal
// for protobuf messages, reflect.DeepEqual otherwise). It returns the message.
func (p *Probe) ExpectMsg(want any, timeout ...time.Duration) any {
	p.t.Helper()
	got := p.Next(timeout...)
	if !equal(got, want) {
		p.t.Fatalf("actortest: probe %s expected %T %v, got %T %v", p.pid.Id, want, want, got, got)
	}
	return got
}

func equal(a, b any) bool {
	pa, okA := a.(proto.Message)
	pb, okB := b.(proto.Message)
	if okA && okB {
		return proto.Equal(pa, pb)
	}
	return reflect.DeepEqual(a, b)
}

// ExpectMsgType fails the test unless the next message has type T, and
// returns it.
func ExpectMsgType[T any](p *Probe, timeout ...time.Duration) T {
	p.t.Helper()
	got := p.Next(timeout...)
	m, ok := got.(T)
	if !ok {
		var zero T
		p.t.Fatalf("actortest: probe %s expected a %T, got %T %v", p.pid.Id, zero, got, got)
	}
	return m
}

// FishForMsg skips messages until match accepts one, and returns it; it fails
// the test if none does before the timeout.
func (p *Probe) FishForMsg(match func(any) bool, timeout ...time.Duration) any {
	p.t.Helper()
	d := timeoutOf(timeout)
	deadline := time.After(d)
	for {
		select {
		case m := <-p.ch:
			if match(m) {
				return m
			}
		case <-deadline:
			p.t.Fatalf("actortest: probe %s saw no matching message within %v", p.pid.Id, d)
			return nil
		}
	}
}

// ExpectNoMsg fails the test if a message arrives within d.
func (p *Probe) ExpectNoMsg(d time.Duration) {
	p.t.Helper()
	select {
	case m := <-p.ch:
		p.t.Fatalf("actortest: probe %s expected no message, got %T %v", p.pid.Id, m, m)
	case <-time.After(d):
	}
}

// Len is the number of received messages not read yet.
func (p *Probe) Len() int { return len(p.ch) }

// String names the probe.
func (p *Probe) String() string { return fmt.Sprintf("probe(%s)", p.pid.Id) }
