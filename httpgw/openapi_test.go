package httpgw

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// openAPIPath is the committed OpenAPI document of the gateway.
const openAPIPath = "../docs/openapi.yaml"

// loadOpenAPI loads and validates docs/openapi.yaml with kin-openapi.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIPath)
	if err != nil {
		t.Fatalf("load %s: %v", openAPIPath, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("%s is OpenAPI %s, want 3.1", openAPIPath, doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", openAPIPath, err)
	}
	return doc
}

// servedRoutes lists "METHOD /path" for every route the gateway registers,
// from its route table, with the patterns written as OpenAPI paths
// ({key...} becomes {key}). HEAD is implicit for every GET and left out.
func servedRoutes() []string {
	var out []string
	for _, rt := range (&Gateway{}).routes() {
		p := strings.ReplaceAll(strings.ReplaceAll(rt.pattern, "...}", "}"), "{$}", "")
		for m := range rt.methods {
			out = append(out, m+" "+p)
		}
	}
	slices.Sort(out)
	return out
}

// documentedRoutes lists "METHOD /path" for every operation of doc.
func documentedRoutes(doc *openapi3.T) []string {
	var out []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			out = append(out, m+" "+p)
		}
	}
	slices.Sort(out)
	return out
}

// routeMismatches says which served routes doc lacks and which documented
// routes are not served.
func routeMismatches(doc *openapi3.T) []string {
	served, documented := servedRoutes(), documentedRoutes(doc)
	var out []string
	for _, r := range served {
		if !slices.Contains(documented, r) {
			out = append(out, r+" is served but not in "+openAPIPath)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			out = append(out, r+" is in "+openAPIPath+" but not served")
		}
	}
	return out
}

// Every route the gateway serves is documented, and every documented route
// is served.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, m := range routeMismatches(doc) {
		t.Error(m)
	}
	// The comparison notices a route missing from the document.
	doc.Paths.Delete("/leave")
	if m := routeMismatches(doc); len(m) != 1 || !strings.HasPrefix(m[0], "POST /leave is served") {
		t.Fatalf("without /leave in the document: %v", m)
	}
	served := servedRoutes()
	if len(served) < 27 {
		t.Fatalf("only %d routes found in the route table: %v", len(served), served)
	}
	// Every operation declares the access the gateway enforces: admin
	// routes bearerAuth alone, reads bearerAuth or nothing (AuthReads
	// decides), open routes nothing.
	access := map[string]string{}
	for _, rt := range (&Gateway{}).Routes() {
		p := strings.ReplaceAll(strings.ReplaceAll(rt.Pattern, "...}", "}"), "{$}", "")
		access[rt.Method+" "+p] = rt.Access
	}
	for p, item := range doc.Paths.Map() {
		for m, op := range item.Operations() {
			var got []string
			if op.Security != nil {
				for _, req := range *op.Security {
					if len(req) == 0 {
						got = append(got, "{}")
					}
					for name := range req {
						got = append(got, name)
					}
				}
			}
			slices.Sort(got)
			want := map[string][]string{"admin": {"bearerAuth"}, "read": {"bearerAuth", "{}"}, "open": nil}[access[m+" "+p]]
			if !slices.Equal(got, want) {
				t.Errorf("%s %s (access %s): security %v, want %v", m, p, access[m+" "+p], got, want)
			}
		}
	}
}
