package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/clusterkit/clusterkit/internal/tmpcheck"
)

// TestMain fails the run if a test leaves anything in the temporary directory.
func TestMain(m *testing.M) { tmpcheck.Main(m) }

// TestDemo runs the whole narrated demo: five nodes, two kills, a restart, a
// failover. It fails if any step times out or disagrees, and if a goroutine
// of any node (the killed ones included) outlives the demo.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a five-node cluster for about ten seconds")
	}
	defer goleak.VerifyNone(t)
	d := &demo{nodes: map[string]*node{}}
	err := d.run(false)
	d.stopAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.alive()) != 4 {
		t.Fatalf("%d nodes alive at the end, want 4", len(d.alive()))
	}
}
