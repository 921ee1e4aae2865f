package clusterkit_test

// Helpers of the runnable examples (example_*_test.go). An example that
// needs a node or a cluster gets it here, so that it shows only what it is
// about; Example, ExampleNew and ExampleClusterKit_Start show the whole
// start of a node.

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/clusterkit/clusterkit"
)

// exampleOptions returns the options of an in-process node on a free
// loopback port, with timings for nodes that share one machine: 100 ms Raft
// timeouts, a joiner votes after 200 ms of health, a membership change is
// rebalanced after 10 ms. Deployments keep the defaults (DefaultOptions).
func exampleOptions(id string, join ...string) clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.NodeID = id
	o.HTTPAddr = "127.0.0.1:0" // any free port
	o.JoinAddrs = join
	o.Logger = slog.New(slog.DiscardHandler) // keep the examples' output clean
	o.Raft = clusterkit.RaftTimings{
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
	}
	o.VoterStabilization = 200 * time.Millisecond
	o.RebalanceDelay = 10 * time.Millisecond
	return o
}

// startNode creates and starts a node, panicking on error. setup runs
// between New and Start: callbacks and subscriptions made there get every
// event of the node's life.
func startNode(o clusterkit.Options, setup ...func(*clusterkit.ClusterKit)) *clusterkit.ClusterKit {
	ck, err := clusterkit.New(o)
	if err != nil {
		panic(err)
	}
	for _, f := range setup {
		f(ck)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ck.Start(ctx); err != nil {
		panic(err)
	}
	return ck
}

// addressOf returns the address a started node advertises to its peers
// (with HTTPAddr "127.0.0.1:0", the port it was given).
func addressOf(ck *clusterkit.ClusterKit) string {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == ck.GetMyNodeID() {
			return n.IP
		}
	}
	panic("not a member: " + ck.GetMyNodeID())
}

// startCluster starts n nodes, node-1 bootstrapping and the others joining
// through it (change, when not nil, adjusts each node's options), and
// returns once every node has applied a table that places every partition
// on min(n, RF) of them and Raft counts min(n, MaxVoters) voters.
func startCluster(n int, change func(*clusterkit.Options)) []*clusterkit.ClusterKit {
	var nodes []*clusterkit.ClusterKit
	for i := 1; i <= n; i++ {
		o := exampleOptions(fmt.Sprintf("node-%d", i))
		if i > 1 {
			o.JoinAddrs = []string{addressOf(nodes[0])}
		}
		if change != nil {
			change(&o)
		}
		nodes = append(nodes, startNode(o))
	}
	waitSettled(nodes)
	return nodes
}

// waitSettled waits until every node has applied a table that places every
// partition on min(members, RF) live members and Raft counts
// min(members, MaxVoters) voters.
func waitSettled(nodes []*clusterkit.ClusterKit) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := len(nodes)
	for _, ck := range nodes {
		_, err := ck.WaitCluster(ctx, func(c *clusterkit.Cluster) bool {
			if len(c.Nodes) != n {
				return false
			}
			voters := 0
			var ids []string
			for _, m := range c.Nodes {
				ids = append(ids, m.ID)
				if m.Voter {
					voters++
				}
			}
			if voters != min(n, c.Config.MaxVoters) {
				return false
			}
			for _, p := range c.PartitionMap.Partitions {
				if !slices.Contains(ids, p.PrimaryNode) || len(p.ReplicaNodes) != min(n, c.Config.ReplicationFactor)-1 {
					return false
				}
			}
			return true
		})
		if err != nil {
			panic(err)
		}
	}
	// A voter is committed first and Raft's configuration follows it; no
	// committed change marks that moment, so this last condition is polled.
	for _, ck := range nodes {
		for ck.HealthCheck().Voters != min(n, ck.GetCluster().Config.MaxVoters) {
			select {
			case <-ctx.Done():
				panic(fmt.Sprintf("%s: Raft has %v as voters", ck.GetMyNodeID(), ck.HealthCheck().VoterIDs))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// stopAll stops the nodes in order: node-1, usually the leader, hands its
// leadership over to a live voter first.
func stopAll(nodes []*clusterkit.ClusterKit) {
	for _, ck := range nodes {
		_ = ck.Stop(context.Background())
	}
}

// TestExamplesCoverAPI: every exported function and method of the package
// has a runnable example (ExampleF, ExampleT_M, or one of them with a
// _suffix), so that pkg.go.dev shows one next to each.
func TestExamplesCoverAPI(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var api []string
	examples := map[string]bool{}
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if strings.HasSuffix(name, "_test.go") {
				if fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
					examples[fn.Name.Name] = true
				}
				continue
			}
			if !fn.Name.IsExported() {
				continue
			}
			if fn.Recv == nil {
				api = append(api, "Example"+fn.Name.Name)
				continue
			}
			typ := fn.Recv.List[0].Type
			if star, ok := typ.(*ast.StarExpr); ok {
				typ = star.X
			}
			if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
				api = append(api, "Example"+id.Name+"_"+fn.Name.Name)
			}
		}
	}
	if len(api) < 60 {
		t.Fatalf("found only %d exported functions and methods: is the parse wrong?", len(api))
	}
	has := func(want string) bool {
		for ex := range examples {
			// ExampleT_M, or ExampleT_M_suffix with a lower-case suffix.
			if ex == want || strings.HasPrefix(ex, want+"_") && unicode.IsLower(rune(ex[len(want)+1])) {
				return true
			}
		}
		return false
	}
	var missing []string
	for _, want := range api {
		if !has(want) {
			missing = append(missing, want)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d exported functions and methods have no example: %s", len(missing), len(api), strings.Join(missing, ", "))
	}
	t.Logf("%d exported functions and methods, %d examples", len(api), len(examples))
}
