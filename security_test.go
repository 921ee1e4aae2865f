package clusterkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestValidateAuthOptions(t *testing.T) {
	base := func() Options { return Options{NodeID: "n1", HTTPAddr: ":8080"} }
	for name, c := range map[string]struct {
		mod  func(*Options)
		want []string
	}{
		"read tokens without admin": {func(o *Options) { o.ReadTokens = []string{"r"} }, []string{"ReadTokens need AuthToken"}},
		"extra admin without admin": {func(o *Options) { o.AuthTokens = []string{"a2"} }, []string{"AuthTokens need AuthToken"}},
		"auth reads without token":  {func(o *Options) { o.AuthReads = true }, []string{"AuthReads needs a token"}},
		"file and static": {func(o *Options) { o.AuthTokenFile, o.AuthToken = "/x", "a" },
			[]string{"AuthTokenFile replaces"}},
		"whitespace and duplicate kind": {func(o *Options) {
			o.AuthToken, o.AuthTokens, o.ReadTokens = "a b", []string{"a2"}, []string{"a2"}
		}, []string{"admin token 1 holds whitespace", "read token 1 is also a admin token"}},
		"negative limits and too many per client": {func(o *Options) {
			o.HTTPLimits = HTTPLimits{MaxEventStreams: 2, MaxEventStreamsPerClient: 3, AuthFailuresPerSecond: -1}
		}, []string{"MaxEventStreamsPerClient 3 is above MaxEventStreams 2", "AuthFailuresPerSecond"}},
	} {
		o := base()
		c.mod(&o)
		err := o.Validate()
		if !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: Validate = %v, want ErrInvalidOptions", name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate = %v, want it to say %q", name, err, w)
			}
		}
		if strings.Contains(err.Error(), "a b") {
			t.Errorf("%s: the error holds a token: %v", name, err)
		}
	}
	ok := base()
	ok.AuthToken, ok.AuthTokens, ok.ReadTokens, ok.AuthReads = "a1", []string{"a0"}, []string{"r1"}, true
	if err := ok.Validate(); err != nil {
		t.Fatalf("a valid token set: %v", err)
	}
	// A token file that cannot be loaded fails Start with a clear error.
	missing := base()
	missing.HTTPAddr, missing.AuthTokenFile = "127.0.0.1:0", filepath.Join(t.TempDir(), "absent")
	ck, err := New(missing)
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.Start(context.Background()); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "AuthTokenFile") {
		t.Fatalf("Start with a missing token file = %v, want ErrInvalidOptions naming AuthTokenFile", err)
	}
}

// syncBuffer is a log destination tests can read while nodes write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// call makes one request with an optional bearer token and returns the status.
func call(t *testing.T, method, url, token string, body io.Reader) int {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// Two nodes with AuthReads and token files: the probes stay open, reads
// need a token, a read token cannot change anything, and a reloaded file
// (ReloadAuth) applies while writes keep flowing through the follower. No
// token ever reaches the logs.
func TestAuthReadsWithTokenFile(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	const admin1, admin2, reader = "adm-one-5e0d9a", "adm-two-c7b312", "rdr-a41f70"
	logs := &syncBuffer{}
	files := []string{filepath.Join(dir, "t1"), filepath.Join(dir, "t2")}
	for _, f := range files {
		if err := os.WriteFile(f, []byte(admin1+"\nread "+reader+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	nodes := startCluster(t, 2, func(i int, o *Options) {
		o.AuthTokenFile, o.AuthReads = files[i-1], true
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}, nil)
	leader := leaderOf(t, nodes)
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	base := "http://" + follower.advertise
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/health", "", 200},
		{"GET", "/ready", "", 200},
		{"GET", "/ui/", "", 200},
		{"GET", "/cluster", "", 401},
		{"GET", "/cluster", "wrong", 401},
		{"GET", "/cluster", reader, 200},
		{"GET", "/metrics", reader, 200},
		{"GET", "/cluster", admin1, 200},
		{"PUT", "/custom-data/k", reader, 403},
		{"PUT", "/custom-data/k", admin1, 200},
		{"GET", "/custom-data/k", reader, 200},
	} {
		if got := call(t, c.method, base+c.path, c.token, strings.NewReader("v")); got != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.token, got, c.want)
		}
	}

	// Rotation in one go on two nodes through ReloadAuth: both accept both,
	// then both send the new one, then the old one goes.
	rewrite := func(content string) {
		t.Helper()
		for i, f := range files {
			if err := os.WriteFile(f+".tmp", []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(f+".tmp", f); err != nil {
				t.Fatal(err)
			}
			if err := nodes[i].ReloadAuth(); err != nil {
				t.Fatalf("ReloadAuth on %s: %v", nodes[i].opts.NodeID, err)
			}
		}
	}
	rewrite(admin1 + "\n" + admin2 + "\nread " + reader + "\n")
	rewrite(admin2 + "\n" + admin1 + "\nread " + reader + "\n")
	rewrite(admin2 + "\nread " + reader + "\n")
	if got := call(t, "PUT", base+"/custom-data/k", admin1, strings.NewReader("v")); got != 401 {
		t.Fatalf("the old admin token after the rotation: %d, want 401", got)
	}
	// Through the follower: forwarded to the leader with the new token.
	for i := range 5 {
		if got := call(t, "PUT", base+"/custom-data/k", admin2, strings.NewReader(fmt.Sprint(i))); got != 200 {
			t.Fatalf("write %d through the follower with the new token: %d", i, got)
		}
	}

	// A file that does not parse leaves the tokens in place.
	if err := os.WriteFile(files[0], []byte("admin a b c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].ReloadAuth(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("ReloadAuth of a bad file = %v, want an error naming line 1", err)
	}
	if got := call(t, "GET", "http://"+nodes[0].advertise+"/cluster", admin2, nil); got != 200 {
		t.Fatalf("after a refused reload: %d, want 200 (the tokens in place stay)", got)
	}
	for _, tok := range []string{admin1, admin2, reader} {
		if strings.Contains(logs.String(), tok) {
			t.Fatalf("a token is in the logs")
		}
	}
	if !strings.Contains(logs.String(), "tokens reloaded") || !strings.Contains(logs.String(), "http access:") {
		t.Fatal("the logs say nothing of the token reloads or of the access mode")
	}
}

// fromAddr is an HTTP client whose connections come from the loopback
// address local (the limits are per client address).
func fromAddr(local string, keepAlive bool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: !keepAlive}}
}

// A client that opens event streams in a loop and guesses tokens cannot
// starve a node: it gets 429s, the node holds at most the per-client cap
// of its streams, and a normal client's requests all succeed meanwhile.
// The normal client's p99 before and during the abuse is reported (not
// asserted: the machine is shared).
func TestAbusiveClient(t *testing.T) {
	leakCheck(t)
	const admin, reader = "adm-7d21ce", "rdr-90bb3f"
	nodes := startCluster(t, 1, func(_ int, o *Options) {
		o.AuthToken, o.ReadTokens, o.AuthReads = admin, []string{reader}, true
	}, nil)
	base := "http://" + nodes[0].advertise
	normal := fromAddr("127.0.0.1", true)
	measure := func(n int) (lat []time.Duration, failed []string) {
		for range n {
			req, _ := http.NewRequest("GET", base+"/cluster", nil)
			req.Header.Set("Authorization", "Bearer "+reader)
			start := time.Now()
			res, err := normal.Do(req)
			if err != nil {
				failed = append(failed, err.Error())
				continue
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			lat = append(lat, time.Since(start))
			if res.StatusCode != 200 {
				failed = append(failed, res.Status)
			}
		}
		return lat, failed
	}
	before, failed := measure(200)
	if len(failed) > 0 {
		t.Fatalf("before the abuse: %v", failed)
	}

	// The abuser: streams it never closes, from 127.0.0.2, and guesses,
	// from 127.0.0.3 (from one address, the guesses would block the
	// streams too: a blocked address is refused before anything else).
	ctx, cancel := context.WithCancel(context.Background())
	abuser, guesser := fromAddr("127.0.0.2", false), fromAddr("127.0.0.3", false)
	var streamsOK, streams429, guesses401, guesses429 atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
			req.Header.Set("Authorization", "Bearer "+reader)
			res, err := abuser.Do(req)
			if err != nil {
				continue
			}
			if res.StatusCode == http.StatusOK {
				streamsOK.Add(1) // left open until the test ends
				go func() { _, _ = io.Copy(io.Discard, res.Body); res.Body.Close() }()
				continue
			}
			if res.StatusCode == http.StatusTooManyRequests {
				streams429.Add(1)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 20000 && ctx.Err() == nil; i++ {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/cluster", nil)
			req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%d", i))
			res, err := guesser.Do(req)
			if err != nil {
				continue
			}
			switch res.StatusCode {
			case http.StatusUnauthorized:
				guesses401.Add(1)
			case http.StatusTooManyRequests:
				guesses429.Add(1)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}()
	waitFor(t, 60*time.Second, "the abuser limited on both counts", func() bool {
		return streams429.Load() >= 50 && guesses429.Load() >= 50
	})
	during, failed := measure(200)
	if open := nodes[0].servingGateway.Load().EventStreams(); open != DefaultMaxEventStreamsPerClient {
		t.Errorf("%d streams open, want the per-client cap %d", open, DefaultMaxEventStreamsPerClient)
	}
	cancel()
	wg.Wait()
	abuser.CloseIdleConnections()
	normal.CloseIdleConnections()
	if len(failed) > 0 {
		t.Fatalf("the normal client failed during the abuse: %d of 200, first %v", len(failed), failed[0])
	}
	if streamsOK.Load() > DefaultMaxEventStreamsPerClient {
		t.Errorf("the abuser opened %d streams, the per-client cap is %d", streamsOK.Load(), DefaultMaxEventStreamsPerClient)
	}
	if g := guesses401.Load(); g > int64(DefaultAuthFailureBurst)+int64(DefaultAuthFailuresPerSecond*120) {
		t.Errorf("the abuser had %d guesses compared, more than the failed-login limit allows", g)
	}
	t.Logf("normal client GET /cluster: p50 %v p99 %v before, p50 %v p99 %v during the abuse (%.1fx); abuser: %d streams, %d refused; %d guesses compared, %d refused",
		percentile(before, 0.5), percentile(before, 0.99), percentile(during, 0.5), percentile(during, 0.99),
		float64(percentile(during, 0.99))/float64(percentile(before, 0.99)),
		streamsOK.Load(), streams429.Load(), guesses401.Load(), guesses429.Load())
}
