package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

// detectOnce crashes a follower of a 4-node cluster and returns the time
// until every survivor's subscribed actor received its NodeLeave.
func detectOnce(s settings) (time.Duration, error) {
	c, err := startCluster(4, s)
	if err != nil {
		return 0, err
	}
	defer c.stop()
	leader, err := c.leader()
	if err != nil {
		return 0, err
	}
	victim := c.others(leader)[2]
	survivors := c.others(victim)
	var wg sync.WaitGroup
	for _, n := range survivors {
		wg.Add(1)
		var once sync.Once
		pid := n.ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if l, ok := ctx.Message().(*messages.NodeLeave); ok && l.GetNode().GetId() == victim.id {
				once.Do(wg.Done)
			}
		}))
		if err := n.ck.Subscribe(pid, clusterkit.WithKinds(clusterkit.EventNodeLeave)); err != nil {
			return 0, err
		}
	}
	done := make(chan struct{})
	start := time.Now()
	victim.crash()
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("%w: no NodeLeave for crashed %s on every survivor within 30 s", errTimeout, victim.id)
	}
	took := time.Since(start)
	c.drop(victim)
	return took, nil
}

// failoverOnce crashes the leader of a 3-node cluster and returns the time
// until a survivor leads and commits (a Barrier through it returns).
func failoverOnce(s settings) (time.Duration, error) {
	c, err := startCluster(3, s)
	if err != nil {
		return 0, err
	}
	defer c.stop()
	old, err := c.leader()
	if err != nil {
		return 0, err
	}
	if err := c.waitVoters(10*time.Second, 3); err != nil {
		return 0, err
	}
	survivors := c.others(old)
	start := time.Now()
	old.crash()
	err = waitFor(30*time.Second, "a new leader that commits", func() bool {
		for _, n := range survivors {
			if n.ck.HealthCheck().IsLeader {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := n.ck.Barrier(ctx)
				cancel()
				if err == nil {
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	c.drop(old)
	return took, nil
}

func runHealth(cfg *config) (*section, error) {
	s := &section{
		title: "Failure detection and failover ([health])",
		intro: `A node is crashed as by kill -9: its network (` + "`internal/crashnet`" + `) closes every listener and connection
at once, so peers see resets and refused dials. "Default" is ` + "`DefaultOptions`" + ` (Raft heartbeat/election 500 ms;
` + "`DefaultHealthCheck`" + `: probe every 500 ms, 400 ms timeout, 3 misses, 1 s removal grace). "Tuned" is Raft 150 ms and
` + "`FastHealthCheck`" + ` (100 ms, 150 ms, 3 misses, 300 ms grace). Detection: a follower of 4 nodes crashes, until a
user actor on every survivor received its ` + "`NodeLeave`" + `. Failover: the leader of 3 nodes crashes, until a survivor
leads and a ` + "`Barrier`" + ` through it returns.`,
	}
	for _, m := range []struct {
		name  string
		s     settings
		limit float64
		text  string
	}{{"default", settings{}, 3000, "≤ 3 s"}, {"tuned", settings{tuned: true}, 1000, "≤ 1 s"}} {
		var took []time.Duration
		for range cfg.detectTrials {
			d, err := detectOnce(m.s)
			if err != nil {
				return nil, fmt.Errorf("detection, %s: %w", m.name, err)
			}
			took = append(took, d)
		}
		r := row{name: "a follower crashes → `NodeLeave` on every survivor, " + m.name, median: fmtMs(median(ms(took))),
			p99: fmtMs(p99(ms(took))), trials: fmt.Sprint(len(took))}
		r.target, r.met = targetLE(p99(ms(took)), m.limit, m.text, "[health]")
		s.rows = append(s.rows, r)
	}
	for _, m := range []struct {
		name string
		s    settings
	}{{"default", settings{}}, {"tuned", settings{tuned: true}}} {
		var took []time.Duration
		for range cfg.failoverTrials {
			d, err := failoverOnce(m.s)
			if err != nil {
				return nil, fmt.Errorf("failover, %s: %w", m.name, err)
			}
			took = append(took, d)
		}
		r := row{name: "the leader crashes → a new leader commits, " + m.name, median: fmtMs(median(ms(took))),
			p99: fmtMs(p99(ms(took))), trials: fmt.Sprint(len(took))}
		if m.name == "default" {
			r.target, r.met = targetLE(median(ms(took)), 1500, "≤ 1.5 s p50", "[health]")
		} else {
			r.target, r.met = noTarget("[health]")
		}
		s.rows = append(s.rows, r)
	}
	return s, nil
}
