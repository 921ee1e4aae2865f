package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit"
)

// The hand-off flags set their options; their environment variables
// (CLUSTERKIT_<FLAG>, then the reference's names) set them too; flags win;
// an unreadable variable is an error naming it.
func TestHandoffFlags(t *testing.T) {
	parse := func(t *testing.T, args ...string) (clusterkit.Options, error) {
		t.Helper()
		d := clusterkit.DefaultOptions()
		fs := newConfigFlags("node")
		fs.SetOutput(io.Discard)
		set := handoffFlags(fs, d)
		if _, err := fs.parse(args); err != nil {
			return d, err
		}
		o := d
		set(&o)
		return o, nil
	}
	check := func(t *testing.T, o clusterkit.Options, replica, handoff time.Duration, moves int) {
		t.Helper()
		if o.ReplicaDelay != replica || o.HandoffTimeout != handoff || o.MaxMovesPerNode != moves {
			t.Fatalf("ReplicaDelay %v, HandoffTimeout %v, MaxMovesPerNode %d; want %v, %v, %d",
				o.ReplicaDelay, o.HandoffTimeout, o.MaxMovesPerNode, replica, handoff, moves)
		}
	}
	t.Run("defaults", func(t *testing.T) {
		o, err := parse(t)
		if err != nil {
			t.Fatal(err)
		}
		check(t, o, clusterkit.DefaultReplicaDelay, clusterkit.DefaultHandoffTimeout, clusterkit.DefaultMaxMovesPerNode)
	})
	t.Run("flags", func(t *testing.T) {
		o, err := parse(t, "-replica-delay", "-1s", "-handoff-timeout", "90s", "-max-moves-per-node", "-1")
		if err != nil {
			t.Fatal(err)
		}
		check(t, o, -time.Second, 90*time.Second, -1)
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv("REPLICA_DELAY", "5s")
		t.Setenv("HANDOFF_TIMEOUT", "2m")
		t.Setenv("MAX_MOVES_PER_NODE", "2")
		o, err := parse(t)
		if err != nil {
			t.Fatal(err)
		}
		check(t, o, 5*time.Second, 2*time.Minute, 2)
		o, err = parse(t, "-max-moves-per-node", "7")
		if err != nil {
			t.Fatal(err)
		}
		check(t, o, 5*time.Second, 2*time.Minute, 7)
	})
	t.Run("CLUSTERKIT_ names first", func(t *testing.T) {
		t.Setenv("REPLICA_DELAY", "5s")
		t.Setenv("CLUSTERKIT_REPLICA_DELAY", "7s")
		o, err := parse(t)
		if err != nil {
			t.Fatal(err)
		}
		check(t, o, 7*time.Second, clusterkit.DefaultHandoffTimeout, clusterkit.DefaultMaxMovesPerNode)
	})
	t.Run("unreadable env", func(t *testing.T) {
		t.Setenv("REPLICA_DELAY", "soon")
		t.Setenv("CLUSTERKIT_MAX_MOVES_PER_NODE", "many")
		_, err := parse(t)
		if err == nil {
			t.Fatal("unreadable variables parsed")
		}
		for _, want := range []string{`REPLICA_DELAY="soon"`, `CLUSTERKIT_MAX_MOVES_PER_NODE="many"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %s: %v", want, err)
			}
		}
	})
	for _, args := range [][]string{{"-replica-delay", "soon"}, {"-handoff-timeout", "1"}, {"-max-moves-per-node", "x"}} {
		if _, err := parse(t, args...); err == nil {
			t.Errorf("%v parsed", args)
		}
	}
}
