package httpgw

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/auth"
	"github.com/clusterkit/clusterkit/internal/rpc"
)

// wantAccess is who may call each method of each route. It is written out
// by hand on purpose: TestRouteAccess fails when a route is added, removed
// or changes access without this table (and docs/operations.md) following.
var wantAccess = map[string]string{
	"GET /health":       "open",
	"GET /ready":        "open",
	"GET /{$}":          "open",
	"GET /ui/{file...}": "open",

	"GET /health/detailed":      "read",
	"GET /cluster":              "read",
	"GET /nodes":                "read",
	"GET /nodes/{id}":           "read",
	"GET /partitions":           "read",
	"GET /partitions/stats":     "read",
	"GET /partitions/{id}":      "read",
	"GET /locate":               "read",
	"GET /consensus/leader":     "read",
	"GET /consensus/stats":      "read",
	"GET /metrics":              "read",
	"GET /events":               "read",
	"GET /custom-data":          "read",
	"GET /custom-data/{key...}": "read",

	"DELETE /nodes/{id}":           "admin",
	"POST /nodes/{id}/drain":       "admin",
	"POST /nodes/{id}/undrain":     "admin",
	"POST /join":                   "admin",
	"POST /leave":                  "admin",
	"POST /rebalance":              "admin",
	"POST /rebalance/pause":        "admin",
	"POST /rebalance/resume":       "admin",
	"POST /leadership/transfer":    "admin",
	"PUT /custom-data/{key...}":    "admin",
	"DELETE /custom-data/{key...}": "admin",

	"POST " + rpc.PathJoin:               "admin",
	"POST " + rpc.PathPropose:            "admin",
	"POST " + rpc.PathProposeBatch:       "admin",
	"POST " + rpc.PathRebalance:          "admin",
	"POST " + rpc.PathPing:               "admin",
	"POST " + rpc.PathMemberStatus:       "admin",
	"POST " + rpc.PathTransferLeadership: "admin",
}

// concrete turns a route pattern into a path it serves.
func concrete(pattern string) string {
	r := strings.NewReplacer("{$}", "", "{id}", "n2", "{file...}", "index.html", "{key...}", "k")
	return r.Replace(pattern)
}

// Every route × {no token, read token, admin token} × AuthReads off and on:
// the probes are always open, reads need a token only with AuthReads, and
// changes and node-to-node routes need the admin token (a read token is
// 403, not 401). The route list itself is checked against wantAccess.
func TestRouteAccess(t *testing.T) {
	fx := fzGetFixture(t)
	g := New(&fzBackend{fx: fx}, slog.New(slog.DiscardHandler), Security{})
	routes := g.Routes()
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		seen[key] = true
		if want, ok := wantAccess[key]; !ok {
			t.Errorf("route %s (access %s) is not in wantAccess: decide who may call it, and document it", key, rt.Access)
		} else if want != rt.Access {
			t.Errorf("route %s: access %s, want %s", key, rt.Access, want)
		}
	}
	for key := range wantAccess {
		if !seen[key] {
			t.Errorf("wantAccess lists %s, which the gateway does not serve", key)
		}
	}

	// Distinctive tokens, so that a leak into an answer is found.
	set, err := auth.New([]string{"adm-9f3c21"}, []string{"rd-77aa05"})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"none": "", "read": "Bearer rd-77aa05", "admin": "Bearer adm-9f3c21"}
	for _, authReads := range []bool{false, true} {
		for _, rt := range routes {
			for _, who := range []string{"none", "read", "admin"} {
				b := &fzBackend{fx: fx}
				g := New(b, slog.New(slog.DiscardHandler), Security{Tokens: func() *auth.Tokens { return set }, AuthReads: authReads})
				g.Close() // event streams end at once
				req := httptest.NewRequest(rt.Method, concrete(rt.Pattern), strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/json")
				if tokens[who] != "" {
					req.Header.Set("Authorization", tokens[who])
				}
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, req)

				want := "pass"
				switch {
				case rt.Access == "admin" && who == "none":
					want = "401"
				case rt.Access == "admin" && who == "read":
					want = "403"
				case rt.Access == "read" && authReads && who == "none":
					want = "401"
				}
				got := "pass"
				if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
					got = strconv.Itoa(rec.Code)
				}
				name := fmt.Sprintf("AuthReads=%v %s %s with %s token", authReads, rt.Method, rt.Pattern, who)
				if got != want {
					t.Errorf("%s: %d, want %s; body %.200s", name, rec.Code, want, rec.Body.String())
					continue
				}
				if got != "pass" && len(b.mutating) > 0 {
					t.Errorf("%s: refused, yet called %v", name, b.mutating)
				}
				if got == "401" && rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", name)
				}
				if got == "403" && !strings.Contains(rec.Body.String(), "read-only token") {
					t.Errorf("%s: 403 does not say why: %s", name, rec.Body.String())
				}
				if body := rec.Body.String(); strings.Contains(body, "adm-9f3c21") || strings.Contains(body, "rd-77aa05") {
					t.Errorf("%s: the answer holds a token: %s", name, rec.Body.String())
				}
			}
		}
	}
}

// The scheme is case-insensitive (RFC 7235); what follows is the token.
func TestBearerScheme(t *testing.T) {
	fx := fzGetFixture(t)
	for header, ok := range map[string]bool{
		"Bearer tok": true, "bearer tok": true, "BEARER tok": true, "Bearer  tok": true,
		"Bearer tok2": false, "Basic tok": false, "tok": false, "Bearertok": false, "Bearer": false,
	} {
		g := New(&fzBackend{fx: fx}, slog.New(slog.DiscardHandler), Security{Tokens: func() *auth.Tokens { return fzTokens }})
		req := httptest.NewRequest(http.MethodPost, "/rebalance/pause", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if authed := rec.Code != http.StatusUnauthorized; authed != ok {
			t.Errorf("Authorization %q: %d, want authenticated=%v", header, rec.Code, ok)
		}
	}
}

// Failed authentications from one address are slowed: after the burst it
// gets 429 with Retry-After, even with the right token, while another
// address is not affected; the bucket refills at the configured rate.
func TestAuthFailuresLimited(t *testing.T) {
	fx := fzGetFixture(t)
	g := New(&fzBackend{fx: fx}, slog.New(slog.DiscardHandler), Security{
		Tokens: func() *auth.Tokens { return fzTokens }, AuthReads: true, AuthFailuresPerSecond: 5, AuthFailureBurst: 3,
	})
	do := func(from, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/cluster", nil)
		req.RemoteAddr = from + ":4000"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := do("10.0.0.1", "guess"+strconv.Itoa(i)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, rec.Code)
		}
	}
	rec := do("10.0.0.1", "guess3")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("guess after the burst: %d, want 429", rec.Code)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("429 without a Retry-After in seconds: %q", rec.Header().Get("Retry-After"))
	}
	var e client.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != "too_many_auth_failures" {
		t.Fatalf("429 body %s, want code too_many_auth_failures", rec.Body.String())
	}
	if rec := do("10.0.0.1", fzToken); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a blocked address with the right token: %d, want 429 (its tokens are not compared)", rec.Code)
	}
	if rec := do("10.0.0.2", fzToken); rec.Code != http.StatusOK {
		t.Fatalf("another address: %d, want 200", rec.Code)
	}
	if rec := do("10.0.0.2", "rtok"); rec.Code != http.StatusOK {
		t.Fatalf("another address with a read token: %d, want 200", rec.Code)
	}
	// 5 per second: a token is back within a second (bounded wait).
	deadline := time.Now().Add(10 * time.Second)
	for do("10.0.0.1", fzToken).Code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the blocked address never recovered")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Event streams are capped per client address and per node: beyond the
// cap 429 with Retry-After; a stream that ends frees its slot.
func TestEventStreamLimits(t *testing.T) {
	fx := fzGetFixture(t)
	g := New(&fzBackend{fx: fx}, slog.New(slog.DiscardHandler), Security{MaxEventStreams: 3, MaxEventStreamsPerClient: 2})
	srv := httptest.NewServer(g)
	srv.Config.RegisterOnShutdown(g.Close)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	clientFrom := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(ip string) (*http.Response, context.CancelFunc) {
		t.Helper()
		sctx, scancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, "http://127.0.0.1:"+port+"/events", nil)
		res, err := clientFrom(ip).Do(req)
		if err != nil {
			scancel()
			t.Fatalf("GET /events from %s: %v", ip, err)
		}
		if res.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			res.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		return res, scancel
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for range 2 {
		res, c := open("127.0.0.1")
		cancels = append(cancels, c)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream within the caps: %d", res.StatusCode)
		}
	}
	res, c := open("127.0.0.1")
	c()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream of one address: %d (Retry-After %q), want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), "this address") {
		t.Fatalf("per-client 429 does not say which limit: %s", body)
	}
	// Another address may open one more: the node's cap is 3.
	res, c = open("127.0.0.2")
	cancels = append(cancels, c)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream of another address: %d, want 200", res.StatusCode)
	}
	res, c = open("127.0.0.3")
	c()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth stream on the node: %d, want 429", res.StatusCode)
	}
	body, _ = io.ReadAll(res.Body)
	if !strings.Contains(string(body), "this node") {
		t.Fatalf("per-node 429 does not say which limit: %s", body)
	}
	// Ending a stream frees its slot (the server notices the disconnect).
	cancels[0]()
	deadline := time.Now().Add(20 * time.Second)
	for g.streams.Open() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("a cancelled stream still holds its slot: %d open", g.streams.Open())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, c = open("127.0.0.1")
	cancels = append(cancels, c)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream after one ended: %d, want 200", res.StatusCode)
	}
}
