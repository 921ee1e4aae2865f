package clusterkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// The document's structure and its route coverage are checked in package
// httpgw (TestOpenAPIDocumentsEveryRoute); here real nodes' answers are
// validated against it.

var registerDecoders sync.Once

// openAPI loads docs/openapi.yaml for response validation against the nodes
// of this test (any host matches).
func openAPI(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	registerDecoders.Do(func() {
		// Bodies the validator has no decoder for: compared as strings.
		for _, ct := range []string{"application/openmetrics-text", "text/event-stream", "application/x-protobuf", "text/javascript", "text/css"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
	})
	doc, err := openapi3.NewLoader().LoadFromFile("docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// oaCall is one request whose answer is validated against the document.
type oaCall struct {
	method, path string // path with its query
	header       map[string]string
	body         []byte
	status       int // the status this call must get
}

// validated sends c to base and validates the request and the answer against
// the document; it returns the answer's body.
func validated(t *testing.T, router routers.Router, base string, c oaCall) []byte {
	t.Helper()
	newReq := func() *http.Request {
		req, err := http.NewRequest(c.method, base+c.path, bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		return req
	}
	check := newReq()
	route, params, err := router.FindRoute(check)
	if err != nil {
		t.Fatalf("%s %s is not in docs/openapi.yaml: %v", c.method, c.path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true},
	}
	ctx := context.Background()
	// A 400 is the answer to a request that breaks the document on purpose.
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && c.status != http.StatusBadRequest {
		t.Fatalf("%s %s: the request does not match the document: %v", c.method, c.path, err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		// The answer itself is checked, a redirect included.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(newReq())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != c.status {
		t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.status)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: in.Options}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Fatalf("%s %s: the answer does not match the document: %v\n%.2000s", c.method, c.path, err, body)
	}
	return body
}

// Real nodes' answers to every documented GET route, and to changes and
// errors, match docs/openapi.yaml: status, headers and body.
func TestOpenAPIResponses(t *testing.T) {
	leakCheck(t)
	doc, router := openAPI(t)
	nodes := tokenCluster(t, 3)
	leader := leaderOf(t, nodes)
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	base := "http://" + follower.advertise
	c := newClient(t, follower)
	ctx := t.Context()
	// The document's example key exists.
	if _, err := c.PutCustomData(ctx, "config", []byte(`{"rps":100}`)); err != nil {
		t.Fatal(err)
	}

	// Every documented GET, with the document's own example parameters.
	var gets []string
	for p, item := range doc.Paths.Map() {
		if item.Get != nil && p != "/events" {
			gets = append(gets, p)
		}
	}
	slices.Sort(gets)
	if len(gets) < 15 {
		t.Fatalf("only %d GET routes documented", len(gets))
	}
	for _, p := range gets {
		item := doc.Paths.Find(p)
		target, query := p, []string{}
		for _, ps := range append(slices.Clone(item.Parameters), item.Get.Parameters...) {
			prm := ps.Value
			switch {
			case prm.In == "path":
				target = strings.ReplaceAll(target, "{"+prm.Name+"}", fmt.Sprint(prm.Example))
			case prm.In == "query" && prm.Required:
				query = append(query, prm.Name+"="+fmt.Sprint(prm.Example))
			}
		}
		if len(query) > 0 {
			target += "?" + strings.Join(query, "&")
		}
		status := http.StatusOK
		if p == "/" {
			status = http.StatusFound // to the dashboard
		}
		t.Run("GET "+target, func(t *testing.T) {
			validated(t, router, base, oaCall{method: "GET", path: target, status: status})
		})
	}

	auth := map[string]string{"Authorization": "Bearer " + testToken}
	jsonAuth := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"}
	etag := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	more := []oaCall{
		// Other forms of the reads.
		{"GET", "/metrics?format=json", nil, nil, 200},
		{"GET", "/metrics", map[string]string{"Accept": "application/openmetrics-text; version=1.0.0"}, nil, 200},
		{"GET", "/nodes?offset=1&limit=1", nil, nil, 200},
		{"GET", "/partitions/7", nil, nil, 200},
		{"GET", "/cluster", map[string]string{"If-None-Match": etag("/cluster")}, nil, 304},
		{"GET", "/custom-data/config", map[string]string{"If-None-Match": etag("/custom-data/config")}, nil, 304},
		{"GET", "/custom-data/config?consistent=true", nil, nil, 200},
		// Errors.
		{"GET", "/nodes?limit=0", nil, nil, 400},
		{"GET", "/nodes/nope", nil, nil, 404},
		{"GET", "/partitions/partition-64", nil, nil, 404},
		{"GET", "/locate?key=", nil, nil, 400},
		{"GET", "/custom-data/nope", nil, nil, 404},
		{"GET", "/events?since=1.0", nil, nil, 410},
		{"GET", "/events?kinds=bogus", nil, nil, 400},
		{"POST", "/rebalance", nil, nil, 401},
		{"DELETE", "/nodes/nope", auth, nil, 404},
		{"POST", "/join", jsonAuth, []byte(`{"member":{"id":"bad id!","address":"127.0.0.1:1"}}`), 400},
		{"POST", "/join", jsonAuth, []byte(`{"member":{"id":"node-9","address":"127.0.0.1:1","nonce":"7"}}`), 409},
		{"PUT", "/custom-data/config", map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/octet-stream", "If-Match": `"1"`}, []byte("x"), 412},
		{"POST", "/leadership/transfer", jsonAuth, []byte(`{"target_id":"nope"}`), 400},
		// Changes.
		{"PUT", "/custom-data/tmp", map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/octet-stream"}, []byte("v"), 200},
		{"DELETE", "/custom-data/tmp", auth, nil, 200},
		{"POST", "/rebalance", auth, nil, 200},
		// Maintenance mode around a drain: nothing moves, the flags commit.
		{"POST", "/rebalance/pause", nil, nil, 401},
		{"POST", "/rebalance/pause", auth, nil, 200},
		{"POST", "/nodes/nope/drain", auth, nil, 404},
		{"POST", "/nodes/node-3/drain", auth, []byte(`{"x":1}`), 400},
		{"POST", "/nodes/node-3/drain", auth, nil, 200},
		{"GET", "/nodes/node-3", nil, nil, 200},
		{"GET", "/cluster", nil, nil, 200},
		{"POST", "/nodes/node-3/undrain", auth, nil, 200},
		{"POST", "/rebalance/resume", auth, nil, 200},
		{"POST", "/leadership/transfer", auth, nil, 200},
		{"POST", "/internal/v1/ping", jsonAuth, []byte(`{}`), 200},
		{"POST", "/internal/v1/member-status", jsonAuth, []byte(`{"id":"node-2"}`), 200},
	}
	for _, call := range more {
		t.Run(fmt.Sprintf("%s %s %d", call.method, call.path, call.status), func(t *testing.T) {
			validated(t, router, base, call)
		})
	}

	// The event stream: its status and headers, then the data of every
	// record against the Event schema (the whole history, from seq 0).
	t.Run("GET /events", func(t *testing.T) {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		// The bootstrap node holds the whole history.
		req, _ := http.NewRequestWithContext(sctx, "GET", "http://"+nodes[0].advertise+"/events?since=0", nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /events?since=0: %d", resp.StatusCode)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{ExcludeResponseBody: true, IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(sctx, out); err != nil {
			t.Fatal(err)
		}
		schema := doc.Components.Schemas["Event"].Value
		kinds := map[string]bool{}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for n := 0; n < 10000 && sc.Scan(); n++ {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatal(err)
			}
			if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
				t.Fatalf("event %s does not match the Event schema: %v", data, err)
			}
			var ev client.Event
			_ = json.Unmarshal([]byte(data), &ev)
			kinds[ev.Kind] = true
			// The history has every kind this test caused; stop there.
			if kinds["node_join"] && kinds["partition_change"] && kinds["rebalance_complete"] && kinds["custom_data_change"] {
				return
			}
		}
		t.Fatalf("the history lacks kinds: saw %v", kinds)
	})

	// The validator does catch a difference: a real node answer fails
	// against a copy of the document without Node.port (an undocumented
	// field), and against one that requires a field the node does not send.
	t.Run("a changed document fails", func(t *testing.T) {
		for _, mutate := range []func(s *openapi3.Schema){
			func(s *openapi3.Schema) { delete(s.Properties, "port") },
			func(s *openapi3.Schema) { s.Required = append(s.Required, "rack") },
		} {
			doc2, err := openapi3.NewLoader().LoadFromFile("docs/openapi.yaml")
			if err != nil {
				t.Fatal(err)
			}
			doc2.Servers = nil
			mutate(doc2.Components.Schemas["Node"].Value)
			r2, err := gorillamux.NewRouter(doc2)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", base+"/nodes/node-2", nil)
			route, params, _ := r2.FindRoute(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header}
			out.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(ctx, out); err == nil {
				t.Fatal("a node answer passed against a changed Node schema")
			}
		}
	})
}
