package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Watch defaults.
const (
	defaultMaxRetries = 10
	defaultMinBackoff = 100 * time.Millisecond
	defaultMaxBackoff = 5 * time.Second
	// idleTimeout: the gateway writes a keep-alive comment every 15 s, so a
	// stream silent for this long is dead even if TCP has not noticed.
	idleTimeout = 45 * time.Second
	// stableConnection: a connection that lasted this long counts as healthy
	// and resets the retry budget even if it carried no event.
	stableConnection = 30 * time.Second
	// maxLine bounds one line of the stream (an event with a 1 MiB value is
	// about 1.4 MiB of JSON).
	maxLine = 4 << 20
)

// WatchOptions configures Watch.
type WatchOptions struct {
	// Since starts the stream after this seq ("<index>.<sub>", or a bare
	// Raft index for "after every event of that entry"); "" starts with the
	// next event; SinceOldest with the oldest event the node still holds
	// ("0" does too while the node holds its whole history, and is 410
	// events_gone once it does not).
	Since string
	// Kinds keeps only these event kinds (the Kind constants); nil keeps all.
	Kinds []string
	// MaxRetries bounds the reconnections in a row that deliver no event:
	// 0 means 10, a negative value retries until ctx ends.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait before a reconnection (it
	// doubles from MinBackoff up to MaxBackoff). Zero means 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
}

// SinceOldest, as WatchOptions.Since (or ?since=oldest), starts with the
// oldest event the node still retains.
const SinceOldest = "oldest"

// seq is an event's position, ordered by index then sub.
type seq struct {
	index uint64
	sub   uint32
}

func (s seq) less(o seq) bool {
	return s.index < o.index || (s.index == o.index && s.sub < o.sub)
}

func (s seq) String() string {
	if s.sub == math.MaxUint32 {
		return strconv.FormatUint(s.index, 10) // after every event of the entry
	}
	return strconv.FormatUint(s.index, 10) + "." + strconv.FormatUint(uint64(s.sub), 10)
}

// parseSeq reads "<index>.<sub>" or a bare "<index>" (after the whole entry).
func parseSeq(s string) (seq, error) {
	idx, sub, dotted := strings.Cut(s, ".")
	i, err := strconv.ParseUint(idx, 10, 64)
	if err != nil || idx == "" || idx[0] == '+' {
		return seq{}, fmt.Errorf("malformed seq %q", s)
	}
	if !dotted {
		return seq{index: i, sub: math.MaxUint32}, nil
	}
	n, err := strconv.ParseUint(sub, 10, 32)
	if err != nil || sub == "" || sub[0] == '+' {
		return seq{}, fmt.Errorf("malformed seq %q", s)
	}
	return seq{index: i, sub: uint32(n)}, nil
}

// errStreamEnded is a stream that ended without an error of its own (the
// node stopped or the connection dropped): Watch reconnects.
var errStreamEnded = errors.New("event stream ended")

// Watch follows GET /events. The sequence yields every event once, in seq
// order. When the connection drops it reconnects (with bounded exponential
// backoff, see WatchOptions) and resumes after the last seq it delivered,
// skipping anything at or before it, so no event is delivered twice and
// none is skipped while the node still holds it.
//
// The sequence ends when the caller stops ranging, or after it yields an
// error: ctx's error once ctx ends, an *Error the gateway answered (400 for
// bad options, 410 "events_gone" when the node no longer holds the events
// after the resume point: resync with Cluster, then watch from now), or the
// last connection error once the retries are spent.
func (c *Client) Watch(ctx context.Context, opts WatchOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		w := &watcher{c: c, opts: opts}
		w.run(ctx, yield)
	}
}

type watcher struct {
	c    *Client
	opts WatchOptions
	// cursor is the resume point: the last seq delivered, else the one the
	// stream said it starts after, else Since.
	cursor    seq
	hasCursor bool
}

func (w *watcher) run(ctx context.Context, yield func(Event, error) bool) {
	if w.opts.Since != "" && w.opts.Since != SinceOldest {
		s, err := parseSeq(w.opts.Since)
		if err != nil {
			yield(Event{}, fmt.Errorf("client: WatchOptions.Since: %w", err))
			return
		}
		w.cursor, w.hasCursor = s, true
	}
	maxRetries := w.opts.MaxRetries
	if maxRetries == 0 {
		maxRetries = defaultMaxRetries
	}
	minB, maxB := w.opts.MinBackoff, w.opts.MaxBackoff
	if minB <= 0 {
		minB = defaultMinBackoff
	}
	if maxB <= 0 {
		maxB = defaultMaxBackoff
	}
	maxB = max(maxB, minB)
	backoff, failures := minB, 0
	for {
		started := time.Now()
		delivered, stop, err := w.stream(ctx, yield)
		if stop {
			return
		}
		if ctx.Err() != nil {
			yield(Event{}, ctx.Err())
			return
		}
		var gwErr *Error
		if errors.As(err, &gwErr) && gwErr.Status < 500 {
			yield(Event{}, err) // bad options or events gone: retrying cannot help
			return
		}
		if delivered || time.Since(started) >= stableConnection {
			failures, backoff = 0, minB
		}
		failures++
		if maxRetries > 0 && failures > maxRetries {
			yield(Event{}, fmt.Errorf("client: event stream: giving up after %d reconnections: %w", maxRetries, err))
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			yield(Event{}, ctx.Err())
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxB)
	}
}

// stream runs one connection. It reports whether it delivered an event,
// whether the caller stopped ranging (stop), and why the stream ended.
func (w *watcher) stream(ctx context.Context, yield func(Event, error) bool) (delivered, stop bool, err error) {
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{}
	if len(w.opts.Kinds) > 0 {
		q.Set("kinds", strings.Join(w.opts.Kinds, ","))
	}
	r := request{method: http.MethodGet, path: "/events", query: q, header: http.Header{"Accept": {"text/event-stream"}}}
	if !w.hasCursor && w.opts.Since == SinceOldest {
		// Until the stream says where it starts.
		q.Set("since", SinceOldest)
	}
	if w.hasCursor {
		// Last-Event-ID is what EventSource sends on reconnect; the gateway
		// prefers it to ?since=.
		r.header.Set("Last-Event-ID", w.cursor.String())
	}
	req, err := w.c.newRequest(connCtx, r)
	if err != nil {
		return false, false, err
	}
	resp, err := w.c.http.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return false, false, errorOf(&response{status: resp.StatusCode, header: resp.Header, body: data})
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, false, &Error{Status: resp.StatusCode, Message: "GET /events answered " + ct + ", not text/event-stream"}
	}

	// A stream silent for longer than the keep-alive period is dead: cancel
	// the request so the blocked read returns.
	idle := time.AfterFunc(idleTimeout, cancel)
	defer idle.Stop()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var id, kind string
	var data strings.Builder
	for {
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errStreamEnded
			}
			return delivered, false, err
		}
		idle.Reset(idleTimeout)
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "":
				// A comment. The gateway's first one says where the stream
				// starts: resume there if the connection drops before the
				// first event.
				if rest, ok := strings.CutPrefix(value, "clusterkit events after "); ok && !w.hasCursor {
					rest = strings.TrimPrefix(rest, "entry ")
					if s, err := parseSeq(rest); err == nil {
						w.cursor, w.hasCursor = s, true
					}
				}
			case "id":
				id = value
			case "event":
				kind = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
			continue
		}
		// A blank line dispatches the record.
		rid, rkind, rdata := id, kind, data.String()
		id, kind = "", ""
		data.Reset()
		switch {
		case rkind == "gone":
			var e Error
			if json.Unmarshal([]byte(rdata), &e) != nil || e.Code == "" {
				e.Code, e.Message = "events_gone", rdata
			}
			e.Status = http.StatusGone
			return delivered, false, &e
		case rdata == "" || rid == "":
			continue
		}
		s, err := parseSeq(rid)
		if err != nil {
			return delivered, false, fmt.Errorf("event stream: %w", err)
		}
		if w.hasCursor && !w.cursor.less(s) {
			continue // already delivered before a reconnection
		}
		var ev Event
		if err := json.Unmarshal([]byte(rdata), &ev); err != nil {
			return delivered, false, fmt.Errorf("event stream: decode event %s: %w", rid, err)
		}
		w.cursor, w.hasCursor = s, true
		delivered = true
		if !yield(ev, nil) {
			return delivered, true, nil
		}
	}
}

// readLine reads one line of at most maxLine bytes, without its line ending
// (SSE allows \n, \r\n and \r; the gateway writes \n).
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxLine {
			return "", fmt.Errorf("event stream: a line is longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}
