package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/messages"
)

func join(index uint64, sub uint32, id string) *messages.Event {
	return &messages.Event{Kind: &messages.Event_NodeJoin{NodeJoin: &messages.NodeJoin{Index: index, Sub: sub, Node: &messages.NodeInfo{Id: id}}}}
}

func change(index uint64, sub uint32, to string) *messages.Event {
	return &messages.Event{Kind: &messages.Event_PartitionChange{PartitionChange: &messages.PartitionChange{Index: index, Sub: sub, CopyToNode: &messages.NodeInfo{Id: to}}}}
}

func collector(sys *actor.ActorSystem) (*actor.PID, chan any) {
	ch := make(chan any, 100)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped:
			return
		}
		ch <- ctx.Message()
	}))
	return pid, ch
}

func recv(t *testing.T, ch chan any) any {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
		return nil
	}
}

func none(t *testing.T, ch chan any) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected %v", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestDispatcherOrderFiltersAndReplaySuppression(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	var delivered Seq
	cfg := &Config{NodeID: "n1", Logger: slog.New(slog.DiscardHandler), Stats: &Stats{},
		LastDelivered: Seq{Index: 5, Sub: 1}, OnDelivered: func(s Seq) { delivered = s }}
	hooks := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newHooksActor(cfg, &dispatchState{last: cfg.LastDelivered}) }))
	all, allCh := collector(sys)
	mine, mineCh := collector(sys)
	for _, s := range []*Subscribe{{PID: all}, {PID: mine, Filter: Filter{Kinds: KindPartitionChange, OnlyMine: true}}} {
		if _, err := sys.Root.RequestFuture(hooks, s, 5*time.Second).Result(); err != nil {
			t.Fatal(err)
		}
	}
	// Events up to (5,1) were delivered before a restart: only later ones go out.
	sys.Root.Send(hooks, &EventBatch{Events: []*messages.Event{join(5, 0, "a"), join(5, 1, "b"), change(5, 2, "n1"), change(5, 3, "n2")}})
	sys.Root.Send(hooks, &EventBatch{Events: []*messages.Event{join(6, 0, "c")}})
	if e := recv(t, allCh).(*messages.PartitionChange); e.GetSub() != 2 {
		t.Fatalf("first delivered %v", e)
	}
	if e := recv(t, allCh).(*messages.PartitionChange); e.GetSub() != 3 {
		t.Fatalf("second delivered %v", e)
	}
	if e := recv(t, allCh).(*messages.NodeJoin); e.GetIndex() != 6 {
		t.Fatalf("third delivered %v", e)
	}
	none(t, allCh)
	if e := recv(t, mineCh).(*messages.PartitionChange); e.GetCopyToNode().GetId() != "n1" {
		t.Fatalf("OnlyMine delivered %v", e)
	}
	none(t, mineCh)
	if cfg.Stats.SuppressedTotal() != 2 {
		t.Fatalf("suppressed %d", cfg.Stats.SuppressedTotal())
	}
	// A replayed batch (same seqs again) is suppressed entirely.
	sys.Root.Send(hooks, &EventBatch{Events: []*messages.Event{join(6, 0, "c")}})
	none(t, allCh)
	if _, err := sys.Root.RequestFuture(hooks, &Unsubscribe{PID: all}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	if delivered != (Seq{Index: 6, Sub: 0}) {
		t.Fatalf("OnDelivered saw %v", delivered)
	}
	if err := sys.Root.StopFuture(hooks).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestCallbackPanicIsContained(t *testing.T) {
	stats := &Stats{}
	calls := 0
	c := &callbackActor{fn: func(*messages.Event) { calls++; panic("boom") }, log: slog.New(slog.DiscardHandler), stats: stats}
	for i := range 3 {
		c.call(join(uint64(i+1), 0, "x"))
	}
	if calls != 3 || stats.CallbackPanics.Load() != 3 {
		t.Fatalf("calls %d panics %d", calls, stats.CallbackPanics.Load())
	}
}

func TestFilterAndSeq(t *testing.T) {
	if !(Seq{1, 5}).Less(Seq{2, 0}) || !(Seq{2, 0}).Less(Seq{2, 1}) || (Seq{2, 1}).Less(Seq{2, 1}) {
		t.Fatal("Seq ordering")
	}
	f := Filter{Kinds: KindNodeJoin}
	if !f.Match(join(1, 0, "a"), "n1") || f.Match(change(1, 0, "n1"), "n1") {
		t.Fatal("kind filter")
	}
	if !(Filter{}).Match(change(1, 0, "n2"), "n1") || (Filter{OnlyMine: true}).Match(change(1, 0, "n2"), "n1") {
		t.Fatal("OnlyMine filter")
	}
	if (Filter{OnlyMine: true}).Match(join(1, 0, "x"), "n1") == false {
		t.Fatal("OnlyMine must not drop other kinds")
	}
	for k, name := range KindNames {
		if name == "" || KindAll&k == 0 {
			t.Fatalf("kind %d", k)
		}
	}
}

// TestKindBitsMatchEventFields pins the kind bits to Event's oneof fields.
func TestKindBitsMatchEventFields(t *testing.T) {
	for want, e := range map[Kind]*messages.Event{
		KindPartitionChange:     {Kind: &messages.Event_PartitionChange{PartitionChange: &messages.PartitionChange{}}},
		KindNodeJoin:            {Kind: &messages.Event_NodeJoin{NodeJoin: &messages.NodeJoin{}}},
		KindNodeRejoin:          {Kind: &messages.Event_NodeRejoin{NodeRejoin: &messages.NodeRejoin{}}},
		KindNodeLeave:           {Kind: &messages.Event_NodeLeave{NodeLeave: &messages.NodeLeave{}}},
		KindRebalanceStart:      {Kind: &messages.Event_RebalanceStart{RebalanceStart: &messages.RebalanceStart{}}},
		KindRebalanceComplete:   {Kind: &messages.Event_RebalanceComplete{RebalanceComplete: &messages.RebalanceComplete{}}},
		KindClusterHealthChange: {Kind: &messages.Event_ClusterHealthChange{ClusterHealthChange: &messages.ClusterHealthChange{}}},
		KindCustomDataChange:    {Kind: &messages.Event_CustomDataChange{CustomDataChange: &messages.CustomDataChange{}}},
		0:                       {},
	} {
		if got := KindOf(e); got != want {
			t.Errorf("KindOf(%T) = %d, want %d", e.GetKind(), got, want)
		}
		if want != 0 && Payload(e) == nil {
			t.Errorf("Payload(%T) = nil", e.GetKind())
		}
	}
}
