package raftfsm

import (
	"testing"

	"github.com/clusterkit/clusterkit/internal/tmpcheck"
)

// TestMain fails the run if a test leaves anything in the temporary directory.
func TestMain(m *testing.M) { tmpcheck.Main(m) }
