package actortest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
)

// Ghost is a process that only looks alive: it answers the internal ping as
// node ID (with the cluster's token) and keeps asking to join, but runs no
// Raft and takes no log. The cluster must never admit it, let alone give it
// a vote: a ghost voter costs the quorum when a real node fails.
type Ghost struct {
	// ID and Addr are the node ID and address it claims.
	ID, Addr string

	nonce  uint64
	token  string
	client *http.Client
	srv    *http.Server
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	codes map[string]int // join answers by refusal code ("" = accepted)
}

// StartGhost starts a ghost with node ID id on its own host of the in-memory
// network; it asks the live nodes to join every 100 ms until the test ends
// (or Stop), authenticating with token.
func (c *Cluster) StartGhost(id, token string) *Ghost {
	c.t.Helper()
	host := "ghost-" + id
	nw := c.net.Host(host)
	ln, err := nw.Listen(host + ":7000")
	if err != nil {
		c.t.Fatalf("actortest: ghost %s: %v", id, err)
	}
	g := &Ghost{ID: id, Addr: host + ":7000", nonce: rand.Uint64() | 1, token: token, done: make(chan struct{}), codes: map[string]int{}}
	g.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return nw.DialContext(ctx, addr) },
	}}
	mux := http.NewServeMux()
	mux.HandleFunc(rpc.PathPing, func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		// Who it claims to be, and nothing of Raft (it has none).
		data, _ := proto.Marshal(&messages.PingResponse{NodeId: id, Nonce: g.nonce, ClusterName: "clusterkit"})
		w.Header().Set("Content-Type", rpc.ContentType)
		_, _ = w.Write(data)
	})
	g.srv = &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	g.wg.Add(2)
	go func() { defer g.wg.Done(); _ = g.srv.Serve(ln) }()
	go func() { defer g.wg.Done(); g.joinLoop(c) }()
	c.t.Cleanup(g.Stop)
	return g
}

func (g *Ghost) joinLoop(c *Cluster) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-g.done:
			return
		case <-tick.C:
		}
		live := c.Live()
		if len(live) == 0 {
			continue
		}
		code, err := g.join(c.addr(live[k%len(live)]))
		if err != nil {
			continue
		}
		g.mu.Lock()
		g.codes[code]++
		g.mu.Unlock()
	}
}

// join asks addr to admit the ghost and returns the answer's refusal code.
func (g *Ghost) join(addr string) (string, error) {
	body, _ := proto.Marshal(&messages.JoinRequest{Member: &messages.Member{Id: g.ID, Name: g.ID, Address: g.Addr, Nonce: g.nonce}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-g.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+rpc.PathJoin, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", rpc.ContentType)
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", errors.Join(err, errors.New(resp.Status))
	}
	jr := &messages.JoinResponse{}
	if err := proto.Unmarshal(data, jr); err != nil {
		return "", err
	}
	if jr.GetAccepted() {
		return "", nil
	}
	return jr.GetCode(), nil
}

// Answers returns how many join answers the ghost got, by refusal code
// ("" counts acceptances).
func (g *Ghost) Answers() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.codes))
	for k, v := range g.codes {
		out[k] = v
	}
	return out
}

// Stop stops the ghost (idempotent).
func (g *Ghost) Stop() {
	select {
	case <-g.done:
		return
	default:
	}
	close(g.done)
	_ = g.srv.Close()
	g.wg.Wait()
	g.client.CloseIdleConnections()
}
