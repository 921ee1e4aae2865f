package httpgw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/messages"
)

// Event stream timings.
const (
	// keepAlive is how often an idle stream sends a comment, so proxies and
	// clients can tell a quiet stream from a dead one.
	keepAlive = 15 * time.Second
	// streamWriteTimeout bounds one write to a stream client: a client that
	// stops reading is dropped instead of holding a goroutine forever.
	streamWriteTimeout = 10 * time.Second
	// streamBatch is the most events written between two flushes.
	streamBatch = 256
)

// sinceOldest asks for every event the node still retains (?since=oldest).
const sinceOldest = "oldest"

// events serves GET /events: a server-sent event stream of the lifecycle
// events this node delivers. Each event's id is its seq ("<index>.<sub>");
// a client resumes with Last-Event-ID (what EventSource sends on reconnect)
// or ?since=<seq>, and gets every event after it, without gaps or
// duplicates, or 410 when the node no longer has them; ?since=oldest starts
// with the oldest event retained. Without either, the stream starts with the
// next event. ?kinds=a,b filters by kind.
func (g *Gateway) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kinds, err := parseKinds(q.Get("kinds"))
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_kinds", err.Error())
		return
	}
	log := g.b.Events()
	cursor := log.Last()
	since := r.Header.Get("Last-Event-ID") // a reconnect knows best
	if since == "" {
		since = q.Get("since")
	}
	switch {
	case since == sinceOldest:
		// Everything still retained: a dashboard or `node watch` shows
		// recent history, not an empty page, with no seq to guess.
		cursor = log.Floor()
	case since != "":
		if cursor, err = eventlog.ParseSeq(since); err != nil {
			g.fail(w, r, http.StatusBadRequest, "bad_seq", err.Error())
			return
		}
	}
	// A live reader (no seq given) that connects to an empty log has
	// missed nothing when the first event later raises the log's floor:
	// it may restart from that floor, unless events were evicted meanwhile.
	live := since == "" && log.Len() == 0
	evicted := log.Evicted()
	batch, next, err := log.After(cursor, streamBatch)
	if err != nil {
		g.fail(w, r, http.StatusGone, "events_gone", err.Error())
		return
	}

	release, ok, limit := g.streams.Acquire(clientAddr(r))
	if !ok {
		// Streams end on their own only when clients leave: a second is
		// a polite pace for a retry, not a promise.
		w.Header().Set("Retry-After", "1")
		if limit == "node" {
			g.fail(w, r, http.StatusTooManyRequests, "too_many_streams",
				fmt.Sprintf("this node already serves %d event streams (the limit)", g.sec.MaxEventStreams))
		} else {
			g.fail(w, r, http.StatusTooManyRequests, "too_many_streams",
				fmt.Sprintf("this address already has %d event streams open on this node (the limit)", g.sec.MaxEventStreamsPerClient))
		}
		return
	}
	defer release()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	g.b.CountRequest(route(r), http.StatusOK)
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	flush := func() bool {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		buf.Reset()
		return rc.Flush() == nil
	}
	// Tell EventSource how soon to reconnect, and show the stream is open.
	buf.WriteString("retry: 1000\n: clusterkit events after " + eventlog.Describe(cursor) + "\n\n")
	if !flush() {
		return
	}
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	for {
		for _, e := range batch {
			p := actors.Payload(e)
			if p == nil {
				continue
			}
			cursor = actors.SeqOf(p)
			if kinds&actors.KindOf(e) == 0 {
				continue
			}
			writeEvent(&buf, cursor, e)
		}
		if buf.Len() > 0 && !flush() {
			return
		}
		if len(batch) == streamBatch {
			batch, next, err = log.After(cursor, streamBatch)
		} else {
			select {
			case <-next:
			case <-ticker.C:
				buf.WriteString(": keep-alive\n\n")
				if !flush() {
					return
				}
			case <-r.Context().Done():
				return
			case <-g.closing:
				return
			}
			batch, next, err = log.After(cursor, streamBatch)
		}
		if err != nil && live && log.Evicted() == evicted {
			cursor = log.Floor()
			batch, next, err = log.After(cursor, streamBatch)
		}
		if len(batch) > 0 {
			live = false
		}
		if err != nil {
			// This reader fell behind the retained window: say so and end
			// the stream; the client must resync (GET /cluster) first.
			fmt.Fprintf(&buf, "event: gone\ndata: {\"error\":%q,\"code\":\"events_gone\"}\n\n", err.Error())
			flush()
			return
		}
	}
}

// writeEvent formats one event as an SSE record: id (its seq), event (its
// kind) and data (the event as one line of JSON, client.Event).
func writeEvent(buf *bytes.Buffer, seq actors.Seq, e *messages.Event) {
	ev, ok := EventOf(actors.Payload(e))
	data, err := json.Marshal(ev)
	if !ok || err != nil {
		data = []byte(`{"error":"cannot encode this event","code":"internal"}`)
	}
	buf.WriteString("id: ")
	buf.WriteString(eventlog.FormatSeq(seq))
	buf.WriteString("\nevent: ")
	buf.WriteString(actors.KindNames[actors.KindOf(e)])
	buf.WriteString("\ndata: ")
	buf.Write(data) // json.Marshal writes one line, as SSE needs
	buf.WriteString("\n\n")
}

// EventOf is an event message (*messages.NodeJoin, ..., as subscribers and
// the event log hold them) in its JSON form: the data of GET /events, and
// what examples/node -events prints. ok is false for anything else.
func EventOf(m any) (ev client.Event, ok bool) {
	p, isEvent := m.(actors.SeqEvent)
	if !isEvent || p == nil {
		return client.Event{}, false
	}
	seq := actors.SeqOf(p)
	ev = client.Event{Seq: eventlog.FormatSeq(seq), Index: seq.Index, Sub: seq.Sub, Time: unixTime(p.GetTimeUnixNano())}
	switch e := m.(type) {
	case *messages.PartitionChange:
		from := make([]client.Node, 0, len(e.GetCopyFromNodes()))
		for _, n := range e.GetCopyFromNodes() {
			if n != nil {
				from = append(from, *eventNodeJSON(n))
			}
		}
		ev.Kind = client.KindPartitionChange
		ev.PartitionChange = &client.PartitionChange{
			PartitionID: e.GetPartitionId(), Partition: int(e.GetPartition()), CopyFromNodes: from,
			CopyToNode: eventNodeJSON(e.GetCopyToNode()), ChangeReason: e.GetChangeReason(),
			OldPrimary: e.GetOldPrimary(), NewPrimary: e.GetNewPrimary(), Epoch: e.GetEpoch(), Role: e.GetRole(),
			NoLiveSource: e.GetNoLiveSource(), Initial: e.GetInitial(),
		}
	case *messages.NodeJoin:
		ev.Kind = client.KindNodeJoin
		ev.NodeJoin = &client.NodeJoin{Node: eventNodeJSON(e.GetNode()), ClusterSize: int(e.GetClusterSize()), IsBootstrap: e.GetIsBootstrap()}
	case *messages.NodeRejoin:
		ev.Kind = client.KindNodeRejoin
		ev.NodeRejoin = &client.NodeRejoin{
			Node: eventNodeJSON(e.GetNode()), OfflineDurationMs: millis(e.GetOfflineDurationNanos()),
			LastSeen: unixTime(e.GetLastSeenUnixNano()), PartitionsBeforeLeave: strs(e.GetPartitionsBeforeLeave()),
		}
	case *messages.NodeLeave:
		ev.Kind = client.KindNodeLeave
		ev.NodeLeave = &client.NodeLeave{
			Node: eventNodeJSON(e.GetNode()), Reason: e.GetReason(),
			PartitionsOwned: strs(e.GetPartitionsOwned()), PartitionsReplica: strs(e.GetPartitionsReplica()),
		}
	case *messages.RebalanceStart:
		ev.Kind = client.KindRebalanceStart
		ev.RebalanceStart = &client.RebalanceStart{
			Trigger: e.GetTrigger(), TriggerNodeID: e.GetTriggerNodeId(),
			PartitionsToMove: int(e.GetPartitionsToMove()), NodesAffected: strs(e.GetNodesAffected()),
		}
	case *messages.RebalanceComplete:
		ev.Kind = client.KindRebalanceComplete
		ev.RebalanceComplete = &client.RebalanceComplete{
			Trigger: e.GetTrigger(), TriggerNodeID: e.GetTriggerNodeId(), PartitionsMoved: int(e.GetPartitionsMoved()),
			NodesAffected: strs(e.GetNodesAffected()), DurationMs: millis(e.GetDurationNanos()),
		}
	case *messages.ClusterHealthChange:
		ev.Kind = client.KindClusterHealthChange
		ev.ClusterHealthChange = &client.ClusterHealthChange{
			Status: e.GetStatus(), PreviousStatus: e.GetPreviousStatus(), HealthyNodes: int(e.GetHealthyNodes()),
			UnhealthyNodes: int(e.GetUnhealthyNodes()), TotalNodes: int(e.GetTotalNodes()),
			UnhealthyNodeIDs:          strs(e.GetUnhealthyNodeIds()),
			UnderReplicatedPartitions: int(e.GetUnderReplicatedPartitions()), UnownedPartitions: int(e.GetUnownedPartitions()),
		}
	case *messages.CustomDataChange:
		ev.Kind = client.KindCustomDataChange
		value := e.GetValue()
		if value == nil {
			value = []byte{}
		}
		ev.CustomDataChange = &client.CustomDataChange{Key: e.GetKey(), Value: value, Version: e.GetVersion(), Deleted: e.GetDeleted()}
	default:
		return client.Event{}, false
	}
	return ev, true
}

// strs keeps JSON lists lists: a nil slice would encode as null.
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// millis is a duration in nanoseconds as fractional milliseconds.
func millis(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
