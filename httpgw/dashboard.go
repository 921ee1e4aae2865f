package httpgw

import (
	"net/http"

	"github.com/clusterkit/clusterkit/httpgw/ui"
)

// dashboardHandler serves the embedded dashboard's files (package ui).
var dashboardHandler = ui.Handler()

// home sends a browser that opens the node's address to the dashboard
// (no body: a redirect needs none).
func (g *Gateway) home(w http.ResponseWriter, r *http.Request) {
	g.b.CountRequest(route(r), http.StatusFound)
	w.Header().Set("Location", ui.Prefix)
	w.WriteHeader(http.StatusFound)
}

// dashboard serves GET /ui/{file...}: the page, its script and style,
// counted like every answer.
func (g *Gateway) dashboard(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	dashboardHandler.ServeHTTP(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	g.b.CountRequest(route(r), sw.status)
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}
