package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxClients bounds the per-client records of a limiter: beyond it, idle
// records are dropped, and if none is idle the newcomers share one record
// (a flood of source addresses costs memory once, not per address).
const maxClients = 4096

// Failures slows down repeated failed authentications, per client address:
// a token bucket of perSecond failures with burst; a client whose bucket is
// empty is refused before its token is even compared.
type Failures struct {
	perSecond rate.Limit
	burst     int

	mu       sync.Mutex
	clients  map[string]*rate.Limiter
	overflow *rate.Limiter
}

// NewFailures returns a limiter of perSecond failed authentications per
// client address, with burst.
func NewFailures(perSecond float64, burst int) *Failures {
	return &Failures{perSecond: rate.Limit(perSecond), burst: burst, clients: map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Blocked reports whether client has used up its failures; retryAfter is
// when the next attempt is allowed (rounded up to a whole second for
// Retry-After).
func (f *Failures) Blocked(client string, now time.Time) (blocked bool, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.clients[client]
	if !ok {
		if len(f.clients) < maxClients {
			return false, 0 // no failure yet
		}
		l = f.overflow
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	wait := time.Duration((1 - tokens) / float64(f.perSecond) * float64(time.Second))
	return true, wait
}

// Fail records a failed authentication of client.
func (f *Failures) Fail(client string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limiter(client, now).AllowN(now, 1)
}

func (f *Failures) limiter(client string, now time.Time) *rate.Limiter {
	if l, ok := f.clients[client]; ok {
		return l
	}
	if len(f.clients) >= maxClients {
		// Drop the records whose bucket has refilled: they hold nothing.
		for c, l := range f.clients {
			if l.TokensAt(now) >= float64(f.burst) {
				delete(f.clients, c)
			}
		}
		if len(f.clients) >= maxClients {
			return f.overflow
		}
	}
	l := rate.NewLimiter(f.perSecond, f.burst)
	f.clients[client] = l
	return l
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Streams caps concurrent long-lived requests (event streams), per node
// and per client address.
type Streams struct {
	max, perClient int

	mu      sync.Mutex
	total   int
	clients map[string]int
}

// NewStreams returns a cap of max streams, perClient of them per address.
func NewStreams(max, perClient int) *Streams {
	return &Streams{max: max, perClient: perClient, clients: map[string]int{}}
}

// Acquire takes a stream slot for client. It returns a release function
// (call it once, when the stream ends), or ok false and which cap was hit:
// "node" or "client".
func (s *Streams) Acquire(client string) (release func(), ok bool, limit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.total >= s.max:
		return nil, false, "node"
	case s.clients[client] >= s.perClient:
		return nil, false, "client"
	}
	s.total++
	s.clients[client]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.clients[client]--; s.clients[client] <= 0 {
				delete(s.clients, client)
			}
		})
	}, true, ""
}

// Open is how many streams are open.
func (s *Streams) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}
