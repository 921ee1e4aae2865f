package httpgw

import (
	"cmp"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clusterkit/clusterkit/internal/auth"
)

// Access is who may call one method of a route.
type Access int

const (
	// open: anyone, in every mode (the probes, the dashboard's files).
	open Access = iota
	// reads: anyone while AuthReads is off; a read or admin token when on.
	reads
	// admin: the admin token whenever the node has tokens.
	admin
)

func (a Access) String() string {
	switch a {
	case reads:
		return "read"
	case admin:
		return "admin"
	default:
		return "open"
	}
}

// Default limits of Security (docs/operations.md, "Security").
const (
	// DefaultMaxEventStreams bounds the open GET /events streams of a node:
	// each holds a goroutine and a subscriber.
	DefaultMaxEventStreams = 256
	// DefaultMaxEventStreamsPerClient bounds them per client address: a
	// dashboard or `node watch` holds one, so 16 leaves room for many tabs
	// and tools behind one address, not for a loop.
	DefaultMaxEventStreamsPerClient = 16
	// DefaultAuthFailuresPerSecond and DefaultAuthFailureBurst slow down
	// failed authentications per client address: a mistyped token costs
	// nothing, guessing costs seconds per attempt.
	DefaultAuthFailuresPerSecond = 2.0
	DefaultAuthFailureBurst      = 10
)

// Security is the gateway's access control and limits.
type Security struct {
	// Tokens is the node's current token set, read on every request (it
	// changes when a token file is reloaded); nil or a nil result: no
	// authentication at all.
	Tokens func() *auth.Tokens
	// AuthReads requires a token on every route but /health, /ready and
	// the dashboard's files.
	AuthReads bool
	// MaxEventStreams and MaxEventStreamsPerClient cap concurrent event
	// streams per node and per client address (0 = the default).
	MaxEventStreams, MaxEventStreamsPerClient int
	// AuthFailuresPerSecond and AuthFailureBurst are the failed
	// authentications a client address may make before it gets 429 (0 =
	// the default).
	AuthFailuresPerSecond float64
	AuthFailureBurst      int
}

func (s Security) withDefaults() Security {
	if s.Tokens == nil {
		s.Tokens = func() *auth.Tokens { return nil }
	}
	if s.MaxEventStreams <= 0 {
		s.MaxEventStreams = DefaultMaxEventStreams
	}
	if s.MaxEventStreamsPerClient <= 0 {
		s.MaxEventStreamsPerClient = DefaultMaxEventStreamsPerClient
	}
	if s.AuthFailuresPerSecond <= 0 {
		s.AuthFailuresPerSecond = DefaultAuthFailuresPerSecond
	}
	if s.AuthFailureBurst <= 0 {
		s.AuthFailureBurst = DefaultAuthFailureBurst
	}
	return s
}

// required is the token level a route of access a needs now.
func (g *Gateway) required(a Access, t *auth.Tokens) auth.Level {
	switch {
	case !t.Enabled() || a == open:
		return auth.None
	case a == reads && !g.sec.AuthReads:
		return auth.None
	case a == reads:
		return auth.Read
	default:
		return auth.Admin
	}
}

// authorize checks r against the access its route needs, and answers
// 401, 403 or 429 when it may not go on. A client address that failed too
// often recently gets 429 before its token is even compared.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, a Access) bool {
	t := g.sec.Tokens()
	need := g.required(a, t)
	if need == auth.None {
		return true
	}
	client := clientAddr(r)
	now := time.Now()
	if blocked, wait := g.failures.Blocked(client, now); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(auth.RetryAfterSeconds(wait)))
		g.fail(w, r, http.StatusTooManyRequests, "too_many_auth_failures",
			"too many failed authentications from this address; retry later")
		return false
	}
	presented, ok := auth.Bearer(r.Header.Get("Authorization"))
	got := auth.None
	if ok {
		got = t.Check([]byte(presented))
	}
	switch {
	case got >= need:
		return true
	case got == auth.Read:
		// A valid token that may not do this: not a failed login.
		g.fail(w, r, http.StatusForbidden, "forbidden", "a read-only token cannot "+r.Method+" "+r.URL.Path+": this needs the admin token")
		return false
	}
	g.failures.Fail(client, now)
	w.Header().Set("WWW-Authenticate", `Bearer realm="clusterkit"`)
	msg := "missing or wrong cluster token"
	if need == auth.Read {
		msg += " (this node requires a token for reads: AuthReads)"
	}
	g.fail(w, r, http.StatusUnauthorized, "unauthorized", msg)
	return false
}

// clientAddr is the address limits are kept per: the peer's IP (a proxy
// in front makes every client one address; its own limits apply there).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// EventStreams is how many GET /events streams are open.
func (g *Gateway) EventStreams() int { return g.streams.Open() }

// RouteAccess is one method of one route and who may call it.
type RouteAccess struct {
	Method, Pattern string
	// Access is "open", "read" or "admin".
	Access string
}

// Routes lists every method of every route with its access, sorted by
// pattern then method (for start-up logs and tests).
func (g *Gateway) Routes() []RouteAccess {
	var out []RouteAccess
	for _, rt := range g.routes() {
		for m, e := range rt.methods {
			out = append(out, RouteAccess{Method: m, Pattern: rt.pattern, Access: e.access.String()})
		}
	}
	slices.SortFunc(out, func(a, b RouteAccess) int {
		return cmp.Or(strings.Compare(a.Pattern, b.Pattern), strings.Compare(a.Method, b.Method))
	})
	return out
}

// OpenRoutes lists the "METHOD pattern" a client may call without a token
// in the current mode (for the start-up log).
func (g *Gateway) OpenRoutes() []string {
	t := g.sec.Tokens()
	var out []string
	for _, rt := range g.routes() {
		for m, e := range rt.methods {
			if g.required(e.access, t) == auth.None {
				out = append(out, m+" "+rt.pattern)
			}
		}
	}
	slices.Sort(out)
	return out
}
