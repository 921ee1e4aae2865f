package httpgw

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves the Prometheus text (or OpenMetrics, when asked)
// format. A collector that fails is logged and skipped: one bad metric must
// not hide all the others.
func metricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:          promLogger{log},
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("metrics", "error", v) }

// metricsRoute serves GET /metrics: Prometheus by default, the reference's
// JSON view with ?format=json.
func (g *Gateway) metricsRoute(w http.ResponseWriter, r *http.Request) {
	switch f := r.URL.Query().Get("format"); f {
	case "json":
		m := g.b.MetricsJSON()
		if m == nil {
			g.fail(w, r, http.StatusInternalServerError, "internal", "no metrics")
			return
		}
		g.write(w, r, http.StatusOK, m)
	case "", "prometheus":
		g.b.CountRequest(route(r), http.StatusOK)
		g.metrics.ServeHTTP(w, r)
	default:
		g.fail(w, r, http.StatusBadRequest, "bad_format", "format must be prometheus (default) or json, got "+quote(f))
	}
}
