package httpgw

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

func (g *Gateway) customDataKeys(w http.ResponseWriter, r *http.Request) {
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_pagination", err.Error())
		return
	}
	keys := g.b.CustomDataKeys()
	from, to := pg.window(len(keys))
	g.write(w, r, http.StatusOK, client.KeysPage{Keys: append([]string{}, keys[from:to]...), Total: len(keys), Offset: pg.Offset, Limit: pg.Limit})
}

// versionTag is a custom-data version as an ETag.
func versionTag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

// getCustomData answers the raw value, its version as the ETag. With
// ?consistent=true the read is linearizable (a barrier through the leader).
func (g *Gateway) getCustomData(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		g.fail(w, r, http.StatusBadRequest, "invalid_key", "the key is empty: GET /custom-data lists the keys")
		return
	}
	var (
		value   []byte
		version uint64
		err     error
	)
	switch c := r.URL.Query().Get("consistent"); c {
	case "", "false":
		value, version, err = g.b.CustomData(key)
	case "true":
		value, version, err = g.b.CustomDataLinearizable(r.Context(), key)
	default:
		g.fail(w, r, http.StatusBadRequest, "bad_request", "consistent must be true or false, got "+quote(c))
		return
	}
	if err != nil {
		if se := (*StatusError)(nil); errors.As(err, &se) && se.Code == "key_not_found" {
			g.fail(w, r, http.StatusNotFound, "key_not_found", "no custom data key "+quote(key))
		} else {
			g.failErr(w, r, err)
		}
		return
	}
	etag := versionTag(version)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		g.b.CountRequest(route(r), http.StatusNotModified)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	g.b.CountRequest(route(r), http.StatusOK)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(value)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(value)
}

// parseIfMatch reads a compare-and-set precondition: If-Match: "<version>"
// (the key must be at that version) or If-None-Match: * (the key must not
// exist). ok is false when neither header is set.
func parseIfMatch(ifMatch, ifNoneMatch string) (expected uint64, ok bool, err error) {
	switch {
	case ifMatch != "" && ifNoneMatch != "":
		return 0, false, errBadPrecondition("send If-Match or If-None-Match, not both")
	case ifNoneMatch != "":
		if strings.TrimSpace(ifNoneMatch) != "*" {
			return 0, false, errBadPrecondition(`If-None-Match on a write must be "*" (create only)`)
		}
		return 0, true, nil
	case ifMatch != "":
		v := strings.TrimSpace(ifMatch)
		v = strings.TrimPrefix(v, "W/")
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		n, perr := parseBounded("If-Match version", v, 1, 1<<62)
		if perr != nil {
			return 0, false, errBadPrecondition(`If-Match must be a version from an ETag, e.g. "42"`)
		}
		return uint64(n), true, nil
	}
	return 0, false, nil
}

type errBadPrecondition string

func (e errBadPrecondition) Error() string { return string(e) }

func (g *Gateway) putCustomData(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	expected, cas, err := parseIfMatch(r.Header.Get("If-Match"), r.Header.Get("If-None-Match"))
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_precondition", err.Error())
		return
	}
	value, ok := g.readBody(w, r, maxBody)
	if !ok {
		return
	}
	version, err := g.b.SetCustomData(r.Context(), key, value, cas, expected)
	if err != nil {
		g.failErr(w, r, err)
		return
	}
	w.Header().Set("ETag", versionTag(version))
	g.write(w, r, http.StatusOK, client.WriteResult{Key: key, Version: version})
}

func (g *Gateway) deleteCustomData(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !g.noBody(w, r) {
		return
	}
	index, err := g.b.DeleteCustomData(r.Context(), key)
	if err != nil {
		g.failErr(w, r, err)
		return
	}
	g.write(w, r, http.StatusOK, client.WriteResult{Key: key, Version: index, Deleted: true})
}
