package actors_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors"
	"github.com/clusterkit/clusterkit/messages"
)

// An application actor subscribed to a node: it receives the node's events
// as proto messages, in seq order, from the node's first event on when it
// subscribes before Start.
func Example() {
	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr = "node-1", "127.0.0.1:0"
	o.Logger = slog.New(slog.DiscardHandler)
	ck, err := clusterkit.New(o)
	if err != nil {
		panic(err)
	}
	joined := make(chan string, 1)
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch msg := c.Message().(type) {
		case *messages.NodeJoin:
			joined <- fmt.Sprintf("%s joined (bootstrap %v) at seq %v, kind %v",
				msg.GetNode().GetId(), msg.GetIsBootstrap(), actors.SeqOf(msg).Index > 0, actors.KindOf(msg))
		}
	}))
	if err := ck.Subscribe(pid, clusterkit.WithKinds(clusterkit.EventNodeJoin)); err != nil {
		panic(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())
	fmt.Println(<-joined)
	// Output: node-1 joined (bootstrap true) at seq true, kind node_join
}
