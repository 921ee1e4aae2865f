package clusterkit

import (
	"fmt"
	"strings"
	"time"

	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/internal/auth"
)

// HTTPLimits caps what one client can cost a node's port. Zero fields take
// the defaults below; the defaults are in docs/operations.md.
type HTTPLimits struct {
	// MaxEventStreams caps the concurrent GET /events streams of the node
	// (default DefaultMaxEventStreams); beyond it, 429 with Retry-After.
	MaxEventStreams int
	// MaxEventStreamsPerClient caps them per client address (default
	// DefaultMaxEventStreamsPerClient).
	MaxEventStreamsPerClient int
	// AuthFailuresPerSecond is the rate of failed authentications a client
	// address may keep up, after a burst of AuthFailureBurst; beyond it the
	// address gets 429 with Retry-After, its token not even compared
	// (defaults DefaultAuthFailuresPerSecond, DefaultAuthFailureBurst).
	AuthFailuresPerSecond float64
	AuthFailureBurst      int
}

// Default HTTP limits.
const (
	DefaultMaxEventStreams          = httpgw.DefaultMaxEventStreams
	DefaultMaxEventStreamsPerClient = httpgw.DefaultMaxEventStreamsPerClient
	DefaultAuthFailuresPerSecond    = httpgw.DefaultAuthFailuresPerSecond
	DefaultAuthFailureBurst         = httpgw.DefaultAuthFailureBurst
)

// authFilePoll is how often a token file is checked for changes: a rotation
// step reaches the node within a second without SIGHUP (a Kubernetes
// secret is replaced behind a symlink, which no inotify watch on the file
// itself would see).
const authFilePoll = time.Second

// validateAuth reports every problem of the token options.
func (o Options) validateAuth() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.AuthTokenFile != "" {
		if o.AuthToken != "" || len(o.AuthTokens) > 0 || len(o.ReadTokens) > 0 {
			bad("AuthTokenFile replaces AuthToken, AuthTokens and ReadTokens: set one or the other")
		}
	} else {
		if o.AuthToken == "" && len(o.AuthTokens) > 0 {
			bad("AuthTokens need AuthToken (the token this node sends)")
		}
		if o.AuthToken == "" && len(o.ReadTokens) > 0 {
			bad("ReadTokens need AuthToken (the nodes authenticate to each other with it)")
		}
		if _, err := o.staticTokens(); err != nil {
			errs = append(errs, err) // every problem, joined
		}
		if o.AuthReads && o.AuthToken == "" {
			bad("AuthReads needs a token (AuthToken or AuthTokenFile)")
		}
	}
	l := o.HTTPLimits
	if l.MaxEventStreams < 0 || l.MaxEventStreamsPerClient < 0 || l.AuthFailureBurst < 0 {
		bad("HTTPLimits must not be negative (0 = default)")
	}
	if f := l.AuthFailuresPerSecond; f < 0 || f != f {
		bad("HTTPLimits.AuthFailuresPerSecond %v must be positive (0 = default)", f)
	}
	if l.MaxEventStreams > 0 && l.MaxEventStreamsPerClient > l.MaxEventStreams {
		bad("HTTPLimits.MaxEventStreamsPerClient %d is above MaxEventStreams %d", l.MaxEventStreamsPerClient, l.MaxEventStreams)
	}
	return errs
}

// staticTokens is the token set of AuthToken, AuthTokens and ReadTokens.
func (o Options) staticTokens() (*auth.Tokens, error) {
	if o.AuthToken == "" {
		return nil, nil
	}
	return auth.New(append([]string{o.AuthToken}, o.AuthTokens...), o.ReadTokens)
}

// openTokens loads the node's tokens: the file's, or the options'.
func (ck *ClusterKit) openTokens() error {
	if f := ck.opts.AuthTokenFile; f != "" {
		s, err := auth.OpenFile(f)
		if err != nil {
			return fmt.Errorf("%w: AuthTokenFile: %w", ErrInvalidOptions, err)
		}
		ck.tokens.Store(s)
	} else {
		t, err := ck.opts.staticTokens()
		if err != nil { // Validate has refused it already
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		ck.tokens.Store(auth.NewStore(t))
	}
	// AuthReads always finds a token: Validate requires AuthToken, and a
	// token file without an admin token does not parse.
	return nil
}

// currentTokens is the node's token set now (nil before Start).
func (ck *ClusterKit) currentTokens() *auth.Tokens {
	s := ck.tokens.Load()
	if s == nil {
		return nil
	}
	return s.Tokens()
}

// primaryToken is the token this node sends to the others.
func (ck *ClusterKit) primaryToken() string { return ck.currentTokens().Primary() }

// ReloadAuth re-reads AuthTokenFile now (the node also notices a change by
// itself within a second; a program calls this on SIGHUP). A file that
// cannot be read or parsed leaves the tokens in place, and its error is
// returned. Without AuthTokenFile it does nothing.
func (ck *ClusterKit) ReloadAuth() error {
	s := ck.tokens.Load()
	if s == nil || s.Path() == "" {
		return nil
	}
	return ck.reloadTokens(s, "reload", nil)
}

// reloadTokens re-reads store's file, counts and logs the outcome. With
// lastErr (the polling watcher), a failure is counted and logged once
// until it changes, not once a second.
func (ck *ClusterKit) reloadTokens(store *auth.Store, why string, lastErr *string) error {
	changed, err := store.Reload()
	if err != nil {
		if lastErr == nil || *lastErr != err.Error() {
			ck.authReloadErrors.Add(1)
			ck.log.Error("token file not loaded: the tokens in place stay", "why", why, "error", err)
		}
		if lastErr != nil {
			*lastErr = err.Error()
		}
		return err
	}
	if lastErr != nil {
		*lastErr = ""
	}
	if changed {
		ck.authReloads.Add(1)
		admin, read := store.Tokens().Counts()
		ck.log.Info("tokens reloaded", "why", why, "file", store.Path(), "admin_tokens", admin, "read_tokens", read)
	}
	return nil
}

// watchTokens polls the token file until stop closes.
func (ck *ClusterKit) watchTokens(store *auth.Store, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(authFilePoll)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = ck.reloadTokens(store, "file changed", &lastErr)
		}
	}
}

// logAccess says at start which routes are open and what needs a token.
func (ck *ClusterKit) logAccess() {
	t := ck.currentTokens()
	if !t.Enabled() {
		ck.log.Info("http access: no token, every route is open to anyone who reaches the port")
		return
	}
	admin, read := t.Counts()
	mode := "changes and node-to-node routes need the admin token; reads are open (AuthReads off)"
	if ck.opts.AuthReads {
		mode = "every route but the open ones needs a token: read tokens for reads, the admin token for changes"
	}
	ck.log.Info("http access: "+mode, "open", strings.Join(ck.gateway.OpenRoutes(), ", "),
		"admin_tokens", admin, "read_tokens", read, "token_file", ck.opts.AuthTokenFile)
}
