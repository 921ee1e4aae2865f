// Package actortest is ClusterKit's test harness, for your tests as well as
// ours: a probe actor that records what it receives, and an N-node cluster of
// real ClusterKit nodes running in the test process over an in-memory network
// that can partition, drop, delay and cut links.
//
//	c := actortest.NewCluster(t, 3)
//	c.WaitConverged(5 * time.Second)
//	p := actortest.NewProbe(t, c.Node(0).ActorSystem())
//	_ = c.Node(0).Subscribe(p.PID(), clusterkit.WithKinds(clusterkit.EventPartitionChange))
//	c.AddNode()
//	change := actortest.ExpectMsgType[*messages.PartitionChange](p, 5*time.Second)
//
// Every wait has a deadline and fails the test with a description when it
// passes. Nodes are stopped when the test ends, and the test fails if any
// goroutine started during it is still running afterwards.
package actortest
