package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/actors"
)

// CallbackStopTimeout is how long Stop waits for event callbacks (OnPartitionChange
// and the others) that are in a call to return. A callback still running
// then is abandoned: Go cannot stop a goroutine, so it keeps running until
// it returns, while Stop stops everything else and returns ErrCallbackStuck.
const CallbackStopTimeout = 5 * time.Second

// errCallbackWait is the cause of the end of Stop's wait for callbacks when
// CallbackStopTimeout, not the caller's context, ended it.
var errCallbackWait = errors.New("callback stop timeout")

// stopActors stops the actor tree. No callback starts a call any more (see
// stop); the calls in progress get until ctx ends to return.
func (ck *ClusterKit) stopActors(ctx context.Context) error {
	stuck := ck.callbacks.WaitIdle(ctx)
	if len(stuck) == 0 {
		if err := ck.system.Root.StopFuture(ck.root).Wait(); err != nil {
			return fmt.Errorf("stop actors: %w", err)
		}
		return nil
	}
	// A callback in a call holds its actor, and so the root, from stopping:
	// stop every other actor one by one, and leave the root to finish
	// stopping when the stuck calls return.
	ck.mu.Lock()
	c := ck.children
	ck.mu.Unlock()
	pids := append([]*actor.PID{c.Hooks, c.Partitions, c.Rebalancer, c.Health, c.State}, ck.callbacks.Idle()...)
	futures := make([]actor.Future, 0, len(pids))
	for _, pid := range pids {
		if pid != nil {
			futures = append(futures, ck.system.Root.StopFuture(pid))
		}
	}
	errs := []error{stuckError(stuck, ctx)}
	for _, f := range futures {
		if err := f.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop actors: %w", err))
		}
	}
	ck.system.Root.Stop(ck.root)
	return errors.Join(errs...)
}

// stuckError names the callbacks that did not return in time.
func stuckError(stuck []actors.RunningCallback, ctx context.Context) error {
	names := make([]string, len(stuck))
	for i, s := range stuck {
		names[i] = fmt.Sprintf("%s (%s) running for %v on the event of seq (%d, %d)",
			s.Hook, s.Name, s.For.Round(time.Millisecond), s.Seq.Index, s.Seq.Sub)
	}
	fate := "abandoned, it keeps running until it returns"
	if len(stuck) > 1 {
		fate = "abandoned, they keep running until they return"
	}
	within := fmt.Sprintf("within %v", CallbackStopTimeout)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, errCallbackWait) {
		within = "before Stop's context ended (" + cause.Error() + ")"
	}
	return fmt.Errorf("%w %s: %s; %s", ErrCallbackStuck, within, strings.Join(names, "; "), fate)
}
