package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/httpgw/client"
)

// TestZoneFailureKill9: six processes in three zones (-zone), RF 3, five
// voters. Both processes of the leader's zone are killed with kill -9 at
// once: no partition loses all its owners (every one has an owner in
// another zone before, during and after), the voters were spread so a
// quorum survives, and custom-data writes go on through the survivors.
func TestZoneFailureKill9(t *testing.T) {
	zone := func(i int) string { return fmt.Sprintf("z%d", i%3) }
	var procs []*proc
	for i := range 6 {
		// -replica-delay -1s: re-replicate at once (not after 30 s).
		args := append([]string{"-zone", zone(i), "-partitions", "48", "-replication-factor", "3", "-replica-delay", "-1s"}, fastArgs...)
		// The leader must not lose its lease to a busy machine mid-test.
		args = append(args, "-raft-heartbeat-timeout", "300ms", "-raft-election-timeout", "300ms")
		if i > 0 {
			args = append(args, "-join", procs[0].addr)
		}
		procs = append(procs, launch(t, fmt.Sprintf("node-%d", i+1), freeAddr(t), args...))
	}
	ids := []string{"node-1", "node-2", "node-3", "node-4", "node-5", "node-6"}
	zoneOf := map[string]string{}
	for i, id := range ids {
		zoneOf[id] = zone(i)
	}
	var doc clusterDoc
	actortest.Eventually(t, 60*time.Second, "5 voters spread over the zones and owners in 3 zones each", func() bool {
		doc = waitMembers(t, procs, ids...)
		perZone := map[string]int{}
		voters := 0
		for _, n := range doc.Cluster.Nodes {
			if n.Zone != zoneOf[n.ID] {
				t.Fatalf("%s reports zone %q, want %q", n.ID, n.Zone, zoneOf[n.ID])
			}
			if n.Voter {
				voters++
				perZone[n.Zone]++
			}
		}
		if voters != 5 || slices.ContainsFunc([]string{"z0", "z1", "z2"}, func(z string) bool { return perZone[z] > 2 }) {
			return false
		}
		for _, p := range doc.Cluster.PartitionMap.Partitions {
			zones := map[string]bool{}
			for _, o := range p.Owners {
				zones[zoneOf[o.ID]] = true
			}
			if len(zones) != 3 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	leader, err := gateway(procs[0].addr).ConsensusLeader(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	lost := zoneOf[leader.LeaderID]
	var victims, survivors []*proc
	for _, p := range procs {
		if zoneOf[p.id] == lost {
			victims = append(victims, p)
		} else {
			survivors = append(survivors, p)
		}
	}

	// Writers: one per survivor, each writing its own key in a loop.
	var ok, failed atomic.Int64
	var lastOK sync.Map // survivor -> last acknowledged value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				v := fmt.Sprint(n)
				_, err := gateway(p.addr).PutCustomData(ctx, "w-"+p.id, []byte(v))
				cancel()
				if err != nil {
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				ok.Add(1)
				lastOK.Store(p.id, v)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	actortest.Eventually(t, 20*time.Second, "writes before the kill", func() bool { return ok.Load() >= 20 })
	killed := time.Now()
	for _, v := range victims {
		v.kill9(t)
	}
	okAtKill := ok.Load()
	// Until the survivors have removed both victims and placed again, every
	// table they show keeps an owner of every partition outside the lost zone.
	defer func() {
		if t.Failed() {
			for _, p := range survivors {
				if d, err := cluster(p.addr); err == nil {
					var owners [][]client.PartitionOwner
					for _, part := range d.Cluster.PartitionMap.Partitions {
						owners = append(owners, part.Owners)
					}
					t.Logf("%s: nodes %+v leader %s health %s owners %v", p.id, d.Cluster.Nodes, d.Leader, d.Cluster.Health, owners[:4])
				}
			}
		}
	}()
	actortest.Eventually(t, 30*time.Second, "the survivors to remove the lost zone and place again", func() bool {
		settled := true
		for _, p := range survivors {
			d, err := cluster(p.addr)
			if err != nil {
				return false
			}
			for id, part := range d.Cluster.PartitionMap.Partitions {
				if !slices.ContainsFunc(part.Owners, func(o client.PartitionOwner) bool { return zoneOf[o.ID] != lost }) {
					t.Fatalf("%s on %s: every owner in the lost zone %s: %v", id, p.id, lost, part.Owners)
				}
				settled = settled && len(part.Owners) == 3 && !slices.ContainsFunc(part.Owners, func(o client.PartitionOwner) bool {
					return zoneOf[o.ID] == lost || o.State != "ready"
				})
			}
			settled = settled && len(d.Cluster.Nodes) == len(survivors)
		}
		return settled
	})
	t.Logf("zone %s (%d nodes, the leader's) lost; survivors placed again %v later", lost, len(victims), time.Since(killed).Round(time.Millisecond))
	// Writes go on: more acknowledged writes after the kill, through every survivor.
	actortest.Eventually(t, 20*time.Second, "writes to succeed after the zone loss", func() bool {
		return ok.Load() >= okAtKill+int64(3*len(survivors))
	})
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // the deferred close needs an open channel; the writers are gone
	for _, p := range survivors {
		want, _ := lastOK.Load(p.id)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := gateway(survivors[0].addr).CustomData(ctx, "w-"+p.id, true)
		cancel()
		if err != nil || string(got.Value) != want {
			t.Fatalf("w-%s reads %v (%v), last acknowledged %v", p.id, got, err, want)
		}
	}
	t.Logf("custom data: %d writes acknowledged (%d after the kill), %d failed", ok.Load(), ok.Load()-okAtKill, failed.Load())
}
