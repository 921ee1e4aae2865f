package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the generated flag tables in docs/operations.md")

const operationsDoc = "../../docs/operations.md"

// flagTables is the generated part of docs/operations.md: every flag of the
// node program, with its variables and default, from the flag sets
// themselves.
func flagTables() string {
	serveFS, _, _ := serveFlags()
	cliFS, _ := cliFlags(command{name: "members"})
	var b strings.Builder
	b.WriteString("#### `node serve` (the default)\n\n")
	b.WriteString(serveFS.markdownTable())
	b.WriteString("\n#### Every operator subcommand (`members`, `status`, `probe`, ...)\n\n")
	b.WriteString(cliFS.markdownTable())
	b.WriteString("\nTheir own flags (`partitions -node`, `rebalance -dry-run`, `watch -since`, `-kinds`, `-n`, `probe -live`) are arguments of one invocation and have no variable.\n")
	return b.String()
}

const (
	tableBegin = "<!-- begin generated flag tables: go test ./examples/node -run TestFlagTables -update -->\n"
	tableEnd   = "<!-- end generated flag tables -->\n"
)

// TestFlagTables: the tables in docs/operations.md are the flags' own
// (regenerated with -update), so the documentation cannot drift.
func TestFlagTables(t *testing.T) {
	if got, want := generatedBlock(t, operationsDoc, tableBegin, tableEnd, ""), flagTables(); got != want {
		if !*update {
			t.Fatalf("the flag tables in %s are out of date: go test ./examples/node -run TestFlagTables -update", operationsDoc)
		}
		generatedBlock(t, operationsDoc, tableBegin, tableEnd, want)
	}
}

// generatedBlock returns the text of path between the begin and end
// marker lines; a non-empty content replaces it first.
func generatedBlock(t *testing.T, path, begin, end, content string) string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s has no generated block between %q and %q", path, begin, end)
	}
	if content == "" {
		return string(doc[i+len(begin) : j])
	}
	out := append(append(append([]byte{}, doc[:i+len(begin)]...), content...), doc[j:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return content
}

// TestEveryFlagHasAVariable: every flag of serve, recover and the
// subcommands' common flags is read from CLUSTERKIT_<FLAG>, and the value
// of the variable reaches the flag.
func TestEveryFlagHasAVariable(t *testing.T) {
	serveFS, _, _ := serveFlags()
	cliFS, _ := cliFlags(command{name: "members"})
	samples := map[string]string{"duration": "7s", "int": "7", "string": "x7", "": "true", "value": "xxh64"}
	for _, fs := range []*configFlags{serveFS, cliFS} {
		fs.VisitAll(func(f *flag.Flag) {
			if !fs.hasEnv(f.Name) {
				if fs.alias[f.Name] == "" {
					t.Errorf("-%s has no environment variable", f.Name)
				}
				return
			}
			kind, _ := flag.UnquoteUsage(f)
			v, ok := samples[kind]
			if !ok {
				t.Fatalf("-%s: no sample for %q", f.Name, kind)
			}
			if f.Name == "output" {
				v = "json"
			}
			if kind == "" && f.DefValue == "true" {
				v = "false"
			}
			t.Setenv(envName(f.Name), v)
		})
		if _, err := fs.parse(nil); err != nil {
			t.Fatal(err)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if fs.hasEnv(f.Name) && f.Value.String() == f.DefValue {
				t.Errorf("%s did not set -%s (still %q)", envName(f.Name), f.Name, f.DefValue)
			}
		})
	}
}

// The reference's variables still work, after CLUSTERKIT_ ones; a flag
// wins over both; HTTP_PORT means ":<port>".
func TestVariablePrecedence(t *testing.T) {
	parse := func(args ...string) *configFlags {
		t.Helper()
		fs, _, _ := serveFlags()
		if _, err := fs.parse(args); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	get := func(fs *configFlags, name string) string { return fs.Lookup(name).Value.String() }
	t.Setenv("HTTP_PORT", "9090")
	t.Setenv("NODE_ID", "legacy")
	if fs := parse(); get(fs, "http") != ":9090" || get(fs, "id") != "legacy" {
		t.Fatalf("-http %q -id %q from HTTP_PORT and NODE_ID", get(fs, "http"), get(fs, "id"))
	}
	t.Setenv("HTTP_ADDR", "127.0.0.1:9191")
	t.Setenv("CLUSTERKIT_ID", "new")
	if fs := parse(); get(fs, "http") != "127.0.0.1:9191" || get(fs, "id") != "new" {
		t.Fatalf("-http %q -id %q, want HTTP_ADDR over HTTP_PORT and CLUSTERKIT_ID over NODE_ID", get(fs, "http"), get(fs, "id"))
	}
	if fs := parse("-id", "flag", "-health-interval", "3s"); get(fs, "id") != "flag" || get(fs, "health-interval") != (3*time.Second).String() {
		t.Fatalf("flags did not win: -id %q", get(fs, "id"))
	}
}

// The token file as a client reads it: without its newline, the first
// admin token of a node's token file, else its first read token; empty,
// unparsable, or given with -auth-token, is an error.
func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := token("", write("ok", "s3cret\n")); err != nil || tok != "s3cret" {
		t.Fatalf("token %q, %v", tok, err)
	}
	if tok, err := token("", write("node", "# rotation\nread r1\nnew-admin\nold-admin\n")); err != nil || tok != "new-admin" {
		t.Fatalf("a node's token file: token %q, %v; want its first admin token", tok, err)
	}
	if tok, err := token("", write("reader", "read r1\nread r2\n")); err != nil || tok != "r1" {
		t.Fatalf("a read token file: token %q, %v; want its first read token", tok, err)
	}
	for name, args := range map[string][2]string{
		"empty file": {"", write("empty", " \n")},
		"bad line":   {"", write("bad", "write s3cret\n")},
		"both":       {"flag", write("both", "x")},
		"missing":    {"", dir + "/none"},
	} {
		if tok, err := token(args[0], args[1]); err == nil {
			t.Errorf("%s: token %q, no error", name, tok)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows a token: %v", name, err)
		}
	}
}
