// Package cli holds what the example programs share around a node's life
// cycle as a process.
package cli

import (
	"context"
	"errors"
)

// StartOrInterrupt runs start (a node's Start, which may wait for a cluster
// for a while) and returns its error, unless ctx ends first (SIGINT or
// SIGTERM): then it stops the node and says it was interrupted, so a process
// told to exit while it is still joining exits promptly.
func StartOrInterrupt(ctx context.Context, start, stop func() error) error {
	started := make(chan error, 1)
	go func() { started <- start() }()
	select {
	case err := <-started:
		return err
	case <-ctx.Done():
		return errors.Join(errors.New("interrupted while starting"), stop())
	}
}
