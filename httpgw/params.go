package httpgw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/actors"
)

// Pagination bounds of /nodes and /partitions.
const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxOffset keeps offsets in int range on every platform; anything past
	// the end simply returns an empty page.
	maxOffset = 1<<31 - 1
	// maxKeyLength bounds the key of /locate.
	maxKeyLength = 4096
)

// page is a pagination window.
type page struct {
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// parsePage reads offset (default 0) and limit (default defaultLimit, at
// most maxLimit) from a query. Anything but plain decimal digits in range is
// an error: the reference deadlocked on offset=-1.
func parsePage(q url.Values) (page, error) {
	p := page{Limit: defaultLimit}
	var err error
	if s, ok := first(q, "offset"); ok {
		if p.Offset, err = parseBounded("offset", s, 0, maxOffset); err != nil {
			return page{}, err
		}
	}
	if s, ok := first(q, "limit"); ok {
		if p.Limit, err = parseBounded("limit", s, 1, maxLimit); err != nil {
			return page{}, err
		}
	}
	return p, nil
}

// window returns the bounds of the page within n items.
func (p page) window(n int) (from, to int) {
	from = min(p.Offset, n)
	return from, min(from+p.Limit, n)
}

func first(q url.Values, name string) (string, bool) {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// parseBounded parses a decimal integer in [lo, hi].
func parseBounded(name, s string, lo, hi int) (int, error) {
	if s == "" || len(s) > 10 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%s must be an integer from %d to %d, got %q", name, lo, hi, truncate(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < int64(lo) || n > int64(hi) {
		return 0, fmt.Errorf("%s must be an integer from %d to %d, got %q", name, lo, hi, truncate(s))
	}
	return int(n), nil
}

// parsePartitionID accepts "partition-48" or "48" for a table of count
// partitions.
func parsePartitionID(s string, count int) (int, error) {
	num := strings.TrimPrefix(s, "partition-")
	if count <= 0 {
		return 0, fmt.Errorf("no partition table yet")
	}
	n, err := parseBounded("partition", num, 0, count-1)
	if err != nil {
		return 0, fmt.Errorf("unknown partition %q: the table has partition-0 to partition-%d", truncate(s), count-1)
	}
	return n, nil
}

// parseKinds reads a comma-separated list of event kind names
// ("partition_change,node_join"); empty means every kind.
func parseKinds(s string) (actors.Kind, error) {
	if s == "" {
		return actors.KindAll, nil
	}
	var k actors.Kind
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for kind, n := range actors.KindNames {
			if n == name {
				k |= kind
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown event kind %q (kinds: %s)", truncate(name), kindList())
		}
	}
	return k, nil
}

func kindList() string {
	names := make([]string, 0, len(actors.KindNames))
	for _, n := range actors.KindNames {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// truncate keeps error messages small whatever the client sent.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// decodeTransfer reads the optional body of POST /leadership/transfer: empty,
// or one JSON object with only known fields.
func decodeTransfer(data []byte) (client.TransferRequest, error) {
	var req client.TransferRequest
	if len(bytes.TrimSpace(data)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return client.TransferRequest{}, fmt.Errorf("malformed JSON body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return client.TransferRequest{}, fmt.Errorf("malformed JSON body: data after the object")
	}
	if len(req.TargetID) > 256 {
		return client.TransferRequest{}, fmt.Errorf("target_id is longer than 256 bytes")
	}
	return req, nil
}
