// Package auth holds a node's tokens: which presented token grants what.
// It is a pure core (no I/O but reading the token file in file.go), used by
// the HTTP gateway, the Raft stream handshake and the node-to-node client.
//
// Two kinds of token: admin tokens (changes and node-to-node traffic) and
// read tokens (reads, events, metrics). A node accepts every token of its
// set and sends its first admin token (the primary) to the other nodes,
// which is what makes rotation without downtime possible: accept the new
// token everywhere, then send it everywhere, then drop the old one.
package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Level is what a presented token grants.
type Level int

const (
	// None: no token, or one this node does not accept.
	None Level = iota
	// Read: reads, events and metrics.
	Read
	// Admin: everything, including changes and node-to-node routes.
	Admin
)

func (l Level) String() string {
	switch l {
	case Read:
		return "read"
	case Admin:
		return "admin"
	default:
		return "none"
	}
}

// Tokens is an immutable set of accepted tokens. The zero value and nil
// hold no token: authentication is off.
type Tokens struct {
	admin [][]byte
	read  [][]byte
}

// New returns the set of admin and read tokens. The first admin token is
// the primary. Every problem is reported at once: empty or whitespace-holding
// tokens, a token listed as both kinds, read tokens without an admin token.
func New(admin, read []string) (*Tokens, error) {
	var errs []error
	t := &Tokens{}
	seen := map[string]string{}
	add := func(kind string, list []string, into *[][]byte) {
		for i, tok := range list {
			switch {
			case tok == "":
				errs = append(errs, fmt.Errorf("%s token %d is empty", kind, i+1))
			case strings.ContainsFunc(tok, isSpace):
				errs = append(errs, fmt.Errorf("%s token %d holds whitespace", kind, i+1))
			case seen[tok] != "" && seen[tok] != kind:
				errs = append(errs, fmt.Errorf("%s token %d is also a %s token", kind, i+1, seen[tok]))
			case seen[tok] == kind:
				// A duplicate of the same kind is harmless (a file edited
				// by hand during a rotation): keep one.
			default:
				seen[tok] = kind
				*into = append(*into, []byte(tok))
			}
		}
	}
	add("admin", admin, &t.admin)
	add("read", read, &t.read)
	if len(t.admin) == 0 && len(read) > 0 {
		errs = append(errs, errors.New("read tokens need an admin token (the nodes authenticate to each other with it)"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\v' || r == '\f'
}

// Enabled reports whether any token is set (authentication on).
func (t *Tokens) Enabled() bool { return t != nil && len(t.admin) > 0 }

// Primary is the admin token this node sends to the others ("" = none).
func (t *Tokens) Primary() string {
	if !t.Enabled() {
		return ""
	}
	return string(t.admin[0])
}

// Check is what presented grants. It compares against every token in
// constant time per token and without stopping at a match, so the time
// taken says nothing about which token (or which prefix) matched.
func (t *Tokens) Check(presented []byte) Level {
	if t == nil || len(presented) == 0 {
		return None
	}
	admin, read := 0, 0
	for _, tok := range t.admin {
		admin |= subtle.ConstantTimeCompare(presented, tok)
	}
	for _, tok := range t.read {
		read |= subtle.ConstantTimeCompare(presented, tok)
	}
	switch {
	case admin == 1:
		return Admin
	case read == 1:
		return Read
	}
	return None
}

// Counts is how many admin and read tokens the set holds (for logs: the
// tokens themselves are never logged).
func (t *Tokens) Counts() (admin, read int) {
	if t == nil {
		return 0, 0
	}
	return len(t.admin), len(t.read)
}

// Bearer extracts the token of an Authorization header value. The scheme
// is matched case-insensitively (RFC 7235 §2.1), and the token may be
// surrounded by spaces. ok is false when the header is not a bearer token.
func Bearer(header string) (token string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(rest)
	return token, token != ""
}

// Parse reads a token file: one token per line; a line "read <token>" is a
// read token and "admin <token>" or a bare "<token>" an admin token; blank
// lines and lines starting with # are ignored. The first admin token is
// the primary. A file without any token is an error: a mount that did not
// happen must not open the cluster.
func Parse(data []byte) (*Tokens, error) {
	admin, read, err := parseLines(data)
	if err != nil {
		return nil, err
	}
	return New(admin, read)
}

// ClientToken is the token a client (the CLI) sends from a token file: the
// first admin token, else the first read token.
func ClientToken(data []byte) (string, error) {
	admin, read, err := parseLines(data)
	switch {
	case err != nil:
		return "", err
	case len(admin) > 0:
		return admin[0], nil
	}
	return read[0], nil
}

// parseLines splits a token file into its admin and read tokens.
func parseLines(data []byte) (admin, read []string, err error) {
	var errs []error
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Never quote the line: it holds a token.
		fields := strings.Fields(line)
		switch {
		case len(fields) == 1:
			admin = append(admin, fields[0])
		case len(fields) == 2 && fields[0] == "admin":
			admin = append(admin, fields[1])
		case len(fields) == 2 && fields[0] == "read":
			read = append(read, fields[1])
		default:
			errs = append(errs, fmt.Errorf("line %d: want <token>, admin <token> or read <token>", n+1))
		}
	}
	if len(errs) == 0 && len(admin) == 0 && len(read) == 0 {
		errs = append(errs, errors.New("no token in the file (an empty file must not open the node)"))
	}
	return admin, read, errors.Join(errs...)
}
