package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterkit/clusterkit"
)

// The tokens of the security section's node.
const (
	benchAdmin = "bench-admin-5f1c"
	benchRead  = "bench-read-c09d"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address local: the node's limits are kept per client address.
func clientFrom(local string, keepAlive bool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: !keepAlive}}
}

// runSecurity measures what an abusive client costs the others ([security]):
// one node with AuthReads and a read token; a normal client (127.0.0.1)
// reads GET /cluster one request at a time, before and while a second
// address opens event streams in a loop and a third guesses tokens. The
// baseline of the "during" figures is the same client's "before" figures.
func runSecurity(cfg *config) (*section, error) {
	s := &section{
		title: "An abusive client ([security])",
		intro: `One node (default options, ` + "`AuthReads`" + `, a read token). A normal client on 127.0.0.1 reads ` + "`GET /cluster`" + `
with the read token, one request at a time over a kept-alive connection: first alone, then while 127.0.0.2 opens
` + "`GET /events`" + ` streams in a loop (never closing them) and 127.0.0.3 sends reads with guessed tokens as fast as it can.`,
	}
	c, err := startCluster(1, settings{modify: func(o *clusterkit.Options) {
		o.AuthToken, o.ReadTokens, o.AuthReads = benchAdmin, []string{benchRead}, true
	}})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	url := "http://" + c.nodes[0].ck.AdvertiseAddr() + "/cluster"
	normal := clientFrom("127.0.0.1", true)
	defer normal.CloseIdleConnections()
	read := func(n int) (lat []time.Duration, failed int, first error) {
		for range n {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+benchRead)
			t0 := time.Now()
			res, err := normal.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					err = fmt.Errorf("GET /cluster: %s", res.Status)
				}
			}
			if err != nil {
				failed++
				if first == nil {
					first = err
				}
				continue
			}
			lat = append(lat, time.Since(t0))
		}
		return lat, failed, first
	}
	before, failedBefore, err := read(cfg.securityReads)
	if failedBefore > 0 {
		return nil, fmt.Errorf("reads before the abuse failed: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var streams, streamsRefused, guesses, guessesRefused atomic.Int64
	var wg sync.WaitGroup
	abuser, guesser := clientFrom("127.0.0.2", false), clientFrom("127.0.0.3", false)
	wg.Go(func() {
		for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.nodes[0].ck.AdvertiseAddr()+"/events", nil)
			req.Header.Set("Authorization", "Bearer "+benchRead)
			res, err := abuser.Do(req)
			if err != nil {
				continue
			}
			if res.StatusCode == http.StatusOK {
				streams.Add(1)
				wg.Go(func() { _, _ = io.Copy(io.Discard, res.Body); res.Body.Close() }) // held until cancel
				continue
			}
			streamsRefused.Add(1)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
	wg.Go(func() {
		for i := 0; i < 10_000_000 && ctx.Err() == nil; i++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%d", i))
			res, err := guesser.Do(req)
			if err != nil {
				continue
			}
			if res.StatusCode == http.StatusTooManyRequests {
				guessesRefused.Add(1)
			} else {
				guesses.Add(1)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
	// The abuse is under way once both limits have refused something.
	deadline := time.Now().Add(30 * time.Second)
	for (streamsRefused.Load() == 0 || guessesRefused.Load() == 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t0 := time.Now()
	during, failedDuring, firstDuring := read(cfg.securityReads)
	window := time.Since(t0)
	cancel()
	wg.Wait()

	r := row{name: "normal client's `GET /cluster` during the abuse: latency", median: fmtMs(median(ms(during))), p99: fmtMs(p99(ms(during))),
		trials: fmt.Sprint(len(during)), baseline: fmtMs(p99(ms(before))) + " p99 before",
		ratio: fmtRatio(p99(ms(during))/p99(ms(before))) + " (p99)"}
	r.target, r.met = noTarget("[security]")
	s.rows = append(s.rows, r)
	r = row{name: "normal client's reads that failed during the abuse", median: fmt.Sprint(failedDuring), trials: fmt.Sprint(cfg.securityReads)}
	r.target, r.met = targetLE(float64(failedDuring), 0, "0", "[security]")
	s.rows = append(s.rows, r)
	r = row{name: "event streams the abuser holds open", median: fmt.Sprint(streams.Load()), trials: fmt.Sprintf("%d refused", streamsRefused.Load())}
	r.target, r.met = targetLE(float64(streams.Load()), clusterkit.DefaultMaxEventStreamsPerClient, fmt.Sprintf("≤ %d (the per-client cap)", clusterkit.DefaultMaxEventStreamsPerClient), "[security]")
	s.rows = append(s.rows, r)
	elapsed := time.Since(t0).Seconds() + 1
	allowed := float64(clusterkit.DefaultAuthFailureBurst) + clusterkit.DefaultAuthFailuresPerSecond*(elapsed+30)
	r = row{name: "guessed tokens the node compared", median: fmt.Sprint(guesses.Load()), trials: fmt.Sprintf("%d refused with 429", guessesRefused.Load())}
	r.target, r.met = targetLE(float64(guesses.Load()), allowed, "burst 10 + 2/s", "[security]")
	s.rows = append(s.rows, r)
	s.notes = append(s.notes, fmt.Sprintf("Before the abuse: p50 %s, p99 %s over %d reads. The reads during the abuse took %v.",
		fmtMs(median(ms(before))), fmtMs(p99(ms(before))), len(before), window.Round(10*time.Millisecond)))
	if firstDuring != nil {
		s.notes = append(s.notes, fmt.Sprintf("The first failed read during the abuse: %v.", firstDuring))
	}
	return s, nil
}
