package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestAssets(t *testing.T) {
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/ui/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/ui/index.html", "text/html; charset=utf-8", `id="partitions"`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "'use strict'"},
		{"/ui/app.css", "text/css; charset=utf-8", ".pgrid"},
	} {
		res, body := serve(t, http.MethodGet, tc.path, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", tc.path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		checkSecurityHeaders(t, tc.path, res)
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tc.path, got)
		}
	}
}

func checkSecurityHeaders(t *testing.T, path string, res *http.Response) {
	t.Helper()
	const csp = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; " +
		"script-src 'self'; base-uri 'none'; frame-ancestors 'none'"
	if got := res.Header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("%s: Content-Security-Policy %q", path, got)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", path, got)
	}
}

func TestHead(t *testing.T) {
	res, body := serve(t, http.MethodHead, "/ui/app.js", nil)
	if res.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD: status %d, body %q", res.StatusCode, body)
	}
	if res.Header.Get("Content-Length") == "" || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD headers: %v", res.Header)
	}
}

func TestConditionalGet(t *testing.T) {
	res, _ := serve(t, http.MethodGet, "/ui/app.css", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res, body := serve(t, http.MethodGet, "/ui/app.css", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("If-None-Match: status %d, body %q", res.StatusCode, body)
	}
}

func checkJSONError(t *testing.T, res *http.Response, body string, status int, code, msg string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d", res.StatusCode, status)
	}
	if got := res.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	var e struct{ Error, Code string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if e.Code != code || (msg != "" && e.Error != msg) {
		t.Errorf("body %+v, want code %q error %q", e, code, msg)
	}
}

func TestNotFound(t *testing.T) {
	for _, p := range []string{"/ui/x", "/ui/static/app.js", "/ui/../ui.go", "/ui/app.js/", "/other"} {
		res, body := serve(t, http.MethodGet, p, nil)
		checkJSONError(t, res, body, http.StatusNotFound, "not_found", "no file "+p)
		checkSecurityHeaders(t, p, res)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		res, body := serve(t, m, "/ui/", nil)
		checkJSONError(t, res, body, http.StatusMethodNotAllowed, "method_not_allowed", "")
		if got := res.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow %q", m, got)
		}
	}
}

func TestRedirectToSlash(t *testing.T) {
	res, _ := serve(t, http.MethodGet, "/ui", nil)
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: status %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestIndexReferencesAssets(t *testing.T) {
	_, body := serve(t, http.MethodGet, "/ui/", nil)
	for _, want := range []string{`<script src="app.js"`, `<link rel="stylesheet" href="app.css">`} {
		if !strings.Contains(body, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	// The CSP forbids inline code and style: none may be in the page.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`), // onclick= and friends
	} {
		if loc := bad.FindStringIndex(body); loc != nil {
			t.Errorf("index.html has inline code or style: %q", body[loc[0]:min(len(body), loc[1]+20)])
		}
	}
}

// TestNoExternalURLs keeps the dashboard offline-capable: no asset may load
// or link anything from another host.
func TestNoExternalURLs(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name := range load() {
		_, body := serve(t, http.MethodGet, "/ui/"+name, nil)
		for _, m := range regexp.MustCompile(`(?i)https?://[^\s"'<>)]+`).FindAllString(body, -1) {
			t.Errorf("%s refers to an external URL: %s", name, m)
		}
		for _, m := range url.FindAllString(body, -1) {
			if strings.HasPrefix(m, "//") || strings.Contains(strings.ToLower(m), "http") {
				t.Errorf("%s refers to another host: %s", name, m)
			}
		}
	}
}

// TestDOMContract pins the ids the page's script and its users rely on.
func TestDOMContract(t *testing.T) {
	_, html := serve(t, http.MethodGet, "/ui/", nil)
	_, js := serve(t, http.MethodGet, "/ui/app.js", nil)
	for _, id := range []string{
		"leader", "cluster-health", "health-reasons", "stream-status", "rebalance-paused",
		"members", "partitions", "partitions-count", "node-filter", "locate-input", "locate-button",
		"locate-result", "locate-clear", "rebalance", "events", "action-status",
		"token-input", "token-save", "token-clear", "auth-state",
	} {
		if !strings.Contains(html, `id="`+id+`"`) {
			t.Errorf("index.html lacks id %q", id)
		}
	}
	if !strings.Contains(html, `id="token-input" type="password"`) {
		t.Error("the token input is not a password field")
	}
	for _, s := range []string{"sessionStorage", "'clusterkit.token'", "Authorization", "If-None-Match", "/events"} {
		if !strings.Contains(js, s) {
			t.Errorf("app.js lacks %q", s)
		}
	}
	if strings.Contains(js, "console.") {
		t.Error("app.js writes to the console")
	}
}
