// Package ui is the node's embedded web dashboard: static HTML, CSS and
// JavaScript, served under /ui/, that reads the gateway's own routes (same
// origin) and its event stream. It has no build step and loads nothing from
// outside the node, so it works offline and under a strict
// Content-Security-Policy.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Prefix is the URL path the dashboard is served under.
const Prefix = "/ui/"

// ContentSecurityPolicy is sent with every answer: the page may only talk to
// and load from its own origin, and runs no inline script or style, so data
// shown from the cluster (node names, keys) cannot become code.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	data  []byte
	ctype string
	etag  string
}

// types pins the content types of the files we ship: mime.TypeByExtension
// reads the host's tables, which vary between systems.
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// load reads every embedded file once: they never change while the
// process runs, so their ETags are computed up front.
func load() map[string]asset {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	assets := map[string]asset{}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ext := path.Ext(name)
		ctype, ok := types[ext]
		if !ok {
			if ctype = mime.TypeByExtension(ext); ctype == "" {
				ctype = "application/octet-stream"
			}
		}
		sum := sha256.Sum256(data)
		assets[name] = asset{data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return assets
}

// Handler serves the dashboard under Prefix: GET /ui/ is index.html, GET
// /ui/app.js the script, and so on. Mount it on the gateway's mux at
// Prefix. Only GET and HEAD are served; errors are JSON like the
// gateway's.
func Handler() http.Handler {
	assets := load()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			fail(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			// The page's relative links need the trailing slash.
			h.Set("Location", Prefix)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if name == "" {
			name = "index.html"
		}
		a, found := assets[name]
		if !ok || !found {
			fail(w, http.StatusNotFound, "not_found", "no file "+r.URL.Path)
			return
		}
		// no-cache: the browser revalidates (cheap, with the ETag), so a
		// new node version is picked up on the next load.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("Content-Type", a.ctype)
		if match(r.Header.Get("If-None-Match"), a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(a.data)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.data)
		}
	})
}

// match implements If-None-Match's list, weak and "*" forms.
func match(header, etag string) bool {
	if header == "" {
		return false
	}
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// fail answers an error in the gateway's JSON shape.
func fail(w http.ResponseWriter, status int, code, msg string) {
	data, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
	data = append(data, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
