package httpgw

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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

var eventJSON = protojson.MarshalOptions{UseProtoNames: true}

// events serves GET /events: a server-sent event stream of the lifecycle
// events this node delivers. Each event's id is its seq ("<index>.<sub>");
// a client resumes with Last-Event-ID (what EventSource sends on reconnect)
// or ?since=<seq>, and gets every event after it, without gaps or
// duplicates, or 410 when the node no longer has them. Without either, the
// stream starts with the next event. ?kinds=a,b filters by kind.
func (g *Gateway) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kinds, err := ParseKinds(q.Get("kinds"))
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
	if since != "" {
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

// writeEvent formats one event as an SSE record: id, event (the kind) and
// data (the event as JSON, proto field names).
func writeEvent(buf *bytes.Buffer, seq actors.Seq, e *messages.Event) {
	var data []byte
	m, ok := actors.Payload(e).(proto.Message)
	err := fmt.Errorf("not a proto message")
	if ok {
		data, err = eventJSON.Marshal(m)
	}
	if err != nil {
		data = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	buf.WriteString("id: ")
	buf.WriteString(eventlog.FormatSeq(seq))
	buf.WriteString("\nevent: ")
	buf.WriteString(actors.KindNames[actors.KindOf(e)])
	buf.WriteString("\ndata: ")
	// protojson output is one line unless Multiline is set; SSE needs that.
	buf.Write(bytes.ReplaceAll(data, []byte("\n"), nil))
	buf.WriteString("\n\n")
}
