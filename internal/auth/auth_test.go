package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseAndCheck(t *testing.T) {
	set, err := Parse([]byte("# rotation in progress\nnew-admin\n\nadmin old-admin\nread reader-1\n  read reader-2  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if set.Primary() != "new-admin" {
		t.Fatalf("primary %q, want the first admin token", set.Primary())
	}
	for tok, want := range map[string]Level{
		"new-admin": Admin, "old-admin": Admin, "reader-1": Read, "reader-2": Read,
		"": None, "new-admi": None, "new-admin2": None, "read": None, "admin": None, "# rotation": None,
	} {
		if got := set.Check([]byte(tok)); got != want {
			t.Errorf("Check(%q) = %v, want %v", tok, got, want)
		}
	}
	if a, r := set.Counts(); a != 2 || r != 2 {
		t.Fatalf("counts %d, %d", a, r)
	}
	var none *Tokens
	if none.Enabled() || none.Check([]byte("x")) != None || none.Primary() != "" {
		t.Fatal("a nil set must authenticate nothing and be off")
	}
}

// Bad files are refused with every problem, and no error holds a token.
func TestParseErrorsNeverHoldTokens(t *testing.T) {
	for name, file := range map[string]string{
		"empty":         "",
		"comments only": "# nothing\n\n",
		"three fields":  "admin s3cret-a extra\n",
		"unknown kind":  "write s3cret-a\n",
		"read only":     "read s3cret-a\n",
		"both kinds":    "s3cret-a\nread s3cret-a\n",
		"two problems":  "write s3cret-a\nadmin s3cret-b s3cret-c\n",
	} {
		_, err := Parse([]byte(file))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error holds a token: %v", name, err)
		}
		if name == "two problems" && (!strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "line 2")) {
			t.Errorf("%s: want both lines reported, got %v", name, err)
		}
	}
	if tok, err := ClientToken([]byte("read r1\nread r2\n")); err != nil || tok != "r1" {
		t.Fatalf("ClientToken of a read-only file = %q, %v; want r1", tok, err)
	}
	if tok, err := ClientToken([]byte("read r1\na1\n")); err != nil || tok != "a1" {
		t.Fatalf("ClientToken = %q, %v; want the admin token a1", tok, err)
	}
}

func TestBearer(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER abc": "abc", "Bearer   abc": "abc", " Bearer abc ": "abc",
		"Basic abc": "", "abc": "", "Bearer": "", "Bearer ": "", "Bearerabc": "",
	} {
		got, ok := Bearer(header)
		if got != want || ok != (want != "") {
			t.Errorf("Bearer(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}

// A reload that cannot parse keeps the tokens in place and reports the
// bad content each time; a good file then applies.
func TestStoreReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a1\n")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("reload of the same file: changed %v, %v", changed, err)
	}
	write("a2\na1\n")
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("reload of a new file: changed %v, %v", changed, err)
	}
	if s.Tokens().Primary() != "a2" || s.Tokens().Check([]byte("a1")) != Admin {
		t.Fatal("the new file did not apply")
	}
	write("garbage line here\n")
	if _, err := s.Reload(); err == nil {
		t.Fatal("a bad file was accepted")
	}
	if _, err := s.Reload(); err == nil {
		t.Fatal("the same bad file, reloaded again, was not reported (a SIGHUP must hear it is still bad)")
	}
	if s.Tokens().Primary() != "a2" {
		t.Fatal("a bad file changed the tokens")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil || s.Tokens().Primary() != "a2" {
		t.Fatalf("a missing file: %v, primary %q", err, s.Tokens().Primary())
	}
	if _, err := OpenFile(path); err == nil {
		t.Fatal("OpenFile of a missing file succeeded")
	}
}

func TestFailures(t *testing.T) {
	f := NewFailures(2, 3)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if b, _ := f.Blocked("a", now); b {
			t.Fatalf("blocked after %d failures, burst is 3", i)
		}
		f.Fail("a", now)
	}
	b, wait := f.Blocked("a", now)
	if !b || wait <= 0 || wait > time.Second {
		t.Fatalf("after the burst: blocked %v, wait %v; want blocked for about 500ms", b, wait)
	}
	if RetryAfterSeconds(wait) != 1 {
		t.Fatalf("Retry-After %d", RetryAfterSeconds(wait))
	}
	if b, _ := f.Blocked("b", now); b {
		t.Fatal("another client is blocked")
	}
	if b, _ := f.Blocked("a", now.Add(wait)); b {
		t.Fatal("still blocked after the wait it announced")
	}
	// A flood of addresses is bounded: past maxClients, newcomers share one record.
	for i := range maxClients + 10 {
		f.Fail("flood-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), now)
	}
	if len(f.clients) > maxClients {
		t.Fatalf("%d client records, bound %d", len(f.clients), maxClients)
	}
}

func TestStreams(t *testing.T) {
	s := NewStreams(3, 2)
	r1, ok, _ := s.Acquire("a")
	r2, ok2, _ := s.Acquire("a")
	if !ok || !ok2 {
		t.Fatal("within the caps")
	}
	if _, ok, limit := s.Acquire("a"); ok || limit != "client" {
		t.Fatalf("third for one client: ok %v, limit %q", ok, limit)
	}
	r3, ok, _ := s.Acquire("b")
	if !ok {
		t.Fatal("another client within the node's cap")
	}
	if _, ok, limit := s.Acquire("c"); ok || limit != "node" {
		t.Fatalf("fourth on the node: ok %v, limit %q", ok, limit)
	}
	r1()
	r1() // a second release is harmless
	if s.Open() != 2 {
		t.Fatalf("%d open after one release", s.Open())
	}
	if _, ok, _ := s.Acquire("c"); !ok {
		t.Fatal("a freed slot is not reusable")
	}
	r2()
	r3()
}
