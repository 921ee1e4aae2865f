package clusterkit_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// readmeImports are what a README snippet that is not a whole program may
// use without importing it (the wrapper imports them all).
var readmeImports = []string{
	"context", "errors", "fmt", "log", "log/slog", "net/http", "os", "time",
	"github.com/asynkron/protoactor-go/actor",
	"github.com/clusterkit/clusterkit",
	"github.com/clusterkit/clusterkit/actors",
	"github.com/clusterkit/clusterkit/messages",
}

// snippet is one ```go block of a Markdown file.
type snippet struct {
	line int // of its first line of code in the file
	code string
}

// goSnippets returns the ```go blocks of a Markdown file.
func goSnippets(t *testing.T, path string) []snippet {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	var cur *snippet
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &snippet{line: n + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated code block", path, cur.line-1)
	}
	return out
}

// wrap turns a snippet into a Go file: a whole program (package main) as it
// is, anything else as the body of a function that has a started node ck
// and a ctx, with readmeImports. It returns the file and how many lines
// precede the snippet's first line in it.
func wrap(s snippet) (string, int) {
	if strings.HasPrefix(strings.TrimSpace(s.code), "package ") {
		return s.code, 0
	}
	var b strings.Builder
	b.WriteString("package snippet\n\nimport (\n")
	for _, imp := range readmeImports {
		fmt.Fprintf(&b, "\t%q\n", imp)
	}
	b.WriteString(")\n\nfunc snippet(ctx context.Context, ck *clusterkit.ClusterKit) {\n")
	header := strings.Count(b.String(), "\n")
	b.WriteString(s.code)
	b.WriteString("}\n")
	return b.String(), header
}

// exportData returns an importer that reads the compiler's export data of
// the packages paths import (directly or not), built by the go command (and
// cached by it like any build).
func exportData(t *testing.T, paths []string) types.Importer {
	t.Helper()
	args := append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}, paths...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "\t"); ok && file != "" {
			exports[path] = file
		}
	}
	return importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q (not a dependency of %v)", path, paths)
		}
		return os.Open(file)
	})
}

// TestReadmeSnippets type-checks every ```go block of README.md against the
// package as it is: a snippet that calls a removed or renamed function, or
// passes the wrong arguments, fails here. A whole program (package main)
// must compile as it is; in a fragment, unused variables and imports are
// allowed (it shows calls, not a program).
func TestReadmeSnippets(t *testing.T) {
	snippets := goSnippets(t, "README.md")
	if len(snippets) < 6 {
		t.Fatalf("README.md has %d Go snippets: is the extraction wrong?", len(snippets))
	}
	fset := token.NewFileSet()
	var files []*ast.File
	var headers []int
	imports := map[string]bool{}
	for _, imp := range readmeImports {
		imports[imp] = true
	}
	for i, s := range snippets {
		src, header := wrap(s)
		f, err := parser.ParseFile(fset, fmt.Sprintf("snippet%d.go", i), src, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("README.md:%d: snippet does not parse: %v", s.line, remap(err.Error(), s.line, header))
			continue
		}
		for _, imp := range f.Imports {
			imports[strings.Trim(imp.Path.Value, `"`)] = true
		}
		files = append(files, f)
		headers = append(headers, header)
	}
	var paths []string
	for p := range imports {
		paths = append(paths, p)
	}
	imp := exportData(t, paths)
	checked := 0
	for i, f := range files {
		s, header := snippets[i], headers[i]
		var errs []error
		conf := types.Config{Importer: imp, Error: func(err error) {
			var te types.Error
			// A fragment may leave a variable or an import unused; a whole
			// program must compile as it is.
			if errors.As(err, &te) && te.Soft && header > 0 && (strings.Contains(te.Msg, "declared and not used") || strings.Contains(te.Msg, "imported and not used")) {
				return
			}
			errs = append(errs, err)
		}}
		_, _ = conf.Check(f.Name.Name, fset, []*ast.File{f}, nil)
		for _, err := range errs {
			var te types.Error
			if errors.As(err, &te) {
				pos := fset.Position(te.Pos)
				t.Errorf("README.md:%d: %s", s.line+pos.Line-1-header, te.Msg)
			} else {
				t.Errorf("README.md:%d: %v", s.line, err)
			}
		}
		checked++
	}
	t.Logf("%d Go snippets of README.md type-checked", checked)
}

// remap rewrites a parse error's "snippetN.go:L:C" into the README's line.
func remap(msg string, first, header int) string {
	var i, line, col int
	if n, _ := fmt.Sscanf(msg, "snippet%d.go:%d:%d:", &i, &line, &col); n == 3 {
		_, rest, _ := strings.Cut(msg, fmt.Sprintf("snippet%d.go:%d:%d:", i, line, col))
		return fmt.Sprintf("line %d:%s", first+line-1-header, rest)
	}
	return msg
}
