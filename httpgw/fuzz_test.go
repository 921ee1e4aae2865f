package httpgw

// Fuzz targets for every request decoder of the gateway, and the table tests
// whose inputs seed them:
//
//	FuzzParsePage          offset/limit of /nodes and /partitions
//	FuzzParsePartitionID   the {id} of /partitions/{id}
//	FuzzParseKinds         ?kinds= of /events
//	FuzzDecodeTransfer     the body of POST /leadership/transfer
//	FuzzDecodeProtoJSON    JSON bodies of /join and the /internal/v1 routes
//	FuzzETagMatch          If-None-Match
//	FuzzGatewayRequests    the whole handler, against a fake Backend
//
// The seq of /events (?since=, Last-Event-ID) is fuzzed by FuzzParseSeq in
// internal/eventlog, and through the handler here.
//
// Names other than the Test and Fuzz functions start with fz so they do not
// collide with the package's other tests.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/auth"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// fzMaxErr bounds decoder error messages: they echo at most 64 bytes of the
// input (quoted, so up to 4 bytes per input byte) plus fixed text.
const fzMaxErr = 512

// fzDecimal is an independent model of the gateway's integer syntax: 1 to 10
// ASCII digits (leading zeros allowed), value in [lo, hi].
func fzDecimal(s string, lo, hi int64) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n >= lo && n <= hi
}

func fzCheckErrSize(t *testing.T, err error) {
	t.Helper()
	if err != nil && (err.Error() == "" || len(err.Error()) > fzMaxErr) {
		t.Fatalf("error message of %d bytes: %.200q", len(err.Error()), err.Error())
	}
}

// ---------------------------------------------------------------------------
// parsePage

var fzPageCases = []struct {
	query string // raw query string, parsed with url.ParseQuery
	ok    bool
	want  page
}{
	{"", true, page{0, defaultLimit}},
	{"offset=0&limit=1", true, page{0, 1}},
	{"offset=10&limit=1000", true, page{10, maxLimit}},
	{"limit=1001", false, page{}},
	{"limit=0", false, page{}},
	{"limit=-1", false, page{}},
	{"offset=-1", false, page{}}, // deadlocked the reference
	{"offset=-0", false, page{}},
	{"offset=+5", false, page{}},   // '+' is a space in a query
	{"offset=%2B5", false, page{}}, // a real '+'
	{"offset=%205", false, page{}},
	{"offset=5%20", false, page{}},
	{"offset=1e3", false, page{}},
	{"offset=0x10", false, page{}},
	{"limit=1.5", false, page{}},
	{"offset=2147483647", true, page{maxOffset, defaultLimit}},
	{"offset=2147483648", false, page{}},
	{"offset=9999999999", false, page{}},
	{"offset=99999999999999999999", false, page{}},
	{"offset=18446744073709551616", false, page{}},
	{"offset=007&limit=0010", true, page{7, 10}},
	{"offset=0000000000", true, page{0, defaultLimit}},
	{"offset=00000000001", false, page{}}, // 11 characters
	{"offset=", false, page{}},
	{"offset", false, page{}},
	{"limit=", false, page{}},
	{"offset=1&offset=x", true, page{1, defaultLimit}}, // the first value counts
	{"offset=x&offset=1", false, page{}},
	{"limit=%EF%BC%91", false, page{}}, // fullwidth digit one
	{"limit=%D9%A3", false, page{}},    // Arabic-Indic three
	{"limit=%00", false, page{}},
	{"offset=%zz", true, page{0, defaultLimit}},       // ParseQuery drops the bad pair
	{"offset=1;limit=5", true, page{0, defaultLimit}}, // ParseQuery drops pairs with ';'
	{"OFFSET=5&Limit=5", true, page{0, defaultLimit}},
	{"offset=5&limit=5&x=%FF", true, page{5, 5}},
}

func TestParsePageSeeds(t *testing.T) {
	for _, c := range fzPageCases {
		q, _ := url.ParseQuery(c.query)
		got, err := parsePage(q)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parsePage(%q) = %+v, %v; want %+v, ok=%v", c.query, got, err, c.want, c.ok)
		}
		fzCheckErrSize(t, err)
	}
}

func FuzzParsePage(f *testing.F) {
	for _, c := range fzPageCases {
		f.Add(c.query)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, _ := url.ParseQuery(s) // a query that does not fully parse still has values
		p, err := parsePage(q)
		fzCheckErrSize(t, err)

		// Exact model: each parameter, when given, is 1 to 10 digits in range.
		want, wantOK := page{Limit: defaultLimit}, true
		if v, ok := q["offset"]; ok && len(v) > 0 {
			n, ok := fzDecimal(v[0], 0, maxOffset)
			want.Offset, wantOK = int(n), wantOK && ok
		}
		if v, ok := q["limit"]; ok && len(v) > 0 {
			n, ok := fzDecimal(v[0], 1, maxLimit)
			want.Limit, wantOK = int(n), wantOK && ok
		}
		if (err == nil) != wantOK {
			t.Fatalf("parsePage(%q) = %+v, %v; the model says ok=%v", s, p, err, wantOK)
		}
		if err != nil {
			if p != (page{}) {
				t.Fatalf("parsePage(%q) failed but returned %+v", s, p)
			}
			return
		}
		if p != want {
			t.Fatalf("parsePage(%q) = %+v, want %+v", s, p, want)
		}
		if p.Offset < 0 || p.Offset > maxOffset || p.Limit < 1 || p.Limit > maxLimit {
			t.Fatalf("parsePage(%q) = %+v out of bounds", s, p)
		}
		for _, n := range []int{0, 1, 7, 99, 100, 101, 999, 1000, 1001, 4999, 5000, min(p.Offset, 5000), min(p.Offset+1, 5000)} {
			from, to := p.window(n)
			if from < 0 || from > to || to > n || to-from > p.Limit {
				t.Fatalf("%+v.window(%d) = [%d, %d)", p, n, from, to)
			}
			if want := min(p.Limit, max(0, n-p.Offset)); to-from != want {
				t.Fatalf("%+v.window(%d) = [%d, %d): %d items, want %d", p, n, from, to, to-from, want)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// parsePartitionID

var fzPartitionCases = []struct {
	s     string
	count int // below 5000: the fuzz target reduces count modulo 5000
	ok    bool
	want  int
}{
	{"partition-0", 8, true, 0},
	{"0", 8, true, 0},
	{"7", 8, true, 7},
	{"partition-7", 8, true, 7},
	{"8", 8, false, 0},
	{"partition-8", 8, false, 0},
	{"partition-", 8, false, 0},
	{"partition", 8, false, 0},
	{"", 8, false, 0},
	{"-1", 8, false, 0},
	{"partition--1", 8, false, 0},
	{"+5", 8, false, 0},
	{"1e3", 4999, false, 0},
	{"007", 8, true, 7}, // leading zeros are accepted
	{"partition-007", 8, true, 7},
	{"partition-0000000007", 8, true, 7},
	{"partition-00000000007", 8, false, 0}, // more than 10 digits
	{"partition-partition-1", 8, false, 0},
	{"Partition-1", 8, false, 0},
	{"partition-1 ", 8, false, 0},
	{" 1", 8, false, 0},
	{"partition-\u0663", 8, false, 0}, // Arabic-Indic three
	{"99999999999999999999", 8, false, 0},
	{"4294967296", 4999, false, 0},
	{"4998", 4999, true, 4998},
	{"0", 1, true, 0},
	{"0", 0, false, 0},
	{"partition-0", -3, false, 0},
	{"0", -4999, false, 0},
}

func TestParsePartitionIDSeeds(t *testing.T) {
	for _, c := range fzPartitionCases {
		got, err := parsePartitionID(c.s, c.count)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parsePartitionID(%q, %d) = %d, %v; want %d, ok=%v", c.s, c.count, got, err, c.want, c.ok)
		}
		fzCheckErrSize(t, err)
	}
}

func FuzzParsePartitionID(f *testing.F) {
	for _, c := range fzPartitionCases {
		f.Add(c.s, c.count)
	}
	f.Fuzz(func(t *testing.T, s string, count int) {
		count %= 5000 // negative counts stay negative: the no-table path
		n, err := parsePartitionID(s, count)
		fzCheckErrSize(t, err)
		if count <= 0 {
			if err == nil || err.Error() != "no partition table yet" {
				t.Fatalf("parsePartitionID(%q, %d) = %d, %v; want the no-table error", s, count, n, err)
			}
			return
		}
		// Exact model: one optional "partition-" prefix, then 1 to 10
		// digits (leading zeros allowed) below count.
		num := strings.TrimPrefix(s, "partition-")
		want, wantOK := fzDecimal(num, 0, int64(count-1))
		if (err == nil) != wantOK {
			t.Fatalf("parsePartitionID(%q, %d) = %d, %v; the model says ok=%v", s, count, n, err, wantOK)
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("parsePartitionID(%q, %d) failed but returned %d", s, count, n)
			}
			return
		}
		if n < 0 || n >= count || int64(n) != want {
			t.Fatalf("parsePartitionID(%q, %d) = %d, want %d", s, count, n, want)
		}
		// Both canonical spellings name the same partition.
		for _, c := range []string{strconv.Itoa(n), "partition-" + strconv.Itoa(n)} {
			if m, err := parsePartitionID(c, count); err != nil || m != n {
				t.Fatalf("parsePartitionID(%q, %d) = %d, %v; want %d", c, count, m, err, n)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// parseKinds

var fzKindCases = []struct {
	s    string
	ok   bool
	want actors.Kind
}{
	{"", true, actors.KindAll},
	{"partition_change", true, actors.KindPartitionChange},
	{"node_join,node_leave", true, actors.KindNodeJoin | actors.KindNodeLeave},
	{" node_join ,\tnode_leave\n", true, actors.KindNodeJoin | actors.KindNodeLeave},
	{"\u00a0node_join\u2003", true, actors.KindNodeJoin}, // TrimSpace is Unicode-aware
	{"node_join,node_join", true, actors.KindNodeJoin},
	{"rebalance_start,rebalance_complete,cluster_health_change,custom_data_change,node_rejoin", true,
		actors.KindRebalanceStart | actors.KindRebalanceComplete | actors.KindClusterHealthChange | actors.KindCustomDataChange | actors.KindNodeRejoin},
	{"node_join,", false, 0},
	{",", false, 0},
	{" ", false, 0},
	{"unknown", false, 0},
	{"NODE_JOIN", false, 0},
	{"node_join\x00", false, 0},
	{"node join", false, 0},
	{"node_join;node_leave", false, 0},
	{"all", false, 0},
	{"*", false, 0},
	{"n\u00f6de_join", false, 0},
	{strings.Repeat("x", 1000), false, 0},
}

func TestParseKindsSeeds(t *testing.T) {
	for _, c := range fzKindCases {
		got, err := parseKinds(c.s)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseKinds(%q) = %b, %v; want %b, ok=%v", c.s, got, err, c.want, c.ok)
		}
		fzCheckErrSize(t, err)
	}
}

func FuzzParseKinds(f *testing.F) {
	for _, c := range fzKindCases {
		f.Add(c.s)
	}
	byName := map[string]actors.Kind{}
	for k, n := range actors.KindNames {
		byName[n] = k
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseKinds(s)
		fzCheckErrSize(t, err)
		// Exact model: "" is every kind; otherwise every comma-separated,
		// trimmed name is a kind name.
		want, wantOK := actors.KindAll, true
		if s != "" {
			want = 0
			for _, name := range strings.Split(s, ",") {
				kind, ok := byName[strings.TrimSpace(name)]
				want, wantOK = want|kind, wantOK && ok
			}
		}
		if (err == nil) != wantOK {
			t.Fatalf("parseKinds(%q) = %b, %v; the model says ok=%v", s, k, err, wantOK)
		}
		if err != nil {
			if k != 0 {
				t.Fatalf("parseKinds(%q) failed but returned %b", s, k)
			}
			return
		}
		if k == 0 || k&^actors.KindAll != 0 || k != want {
			t.Fatalf("parseKinds(%q) = %b, want %b (a non-empty subset of %b)", s, k, want, actors.KindAll)
		}
	})
}

// ---------------------------------------------------------------------------
// decodeTransfer

var fzTransferCases = []struct {
	body string
	ok   bool
	want string // TargetID
}{
	{"", true, ""},
	{"   \n\t\r", true, ""},
	{"{}", true, ""},
	{" {} \n", true, ""},
	{`{"target_id":"n2"}`, true, "n2"},
	{`{"target_id":""}`, true, ""},
	{`{"target_id":null}`, true, ""},
	{`null`, true, ""},                 // encoding/json: null into a struct is a no-op
	{`{"TARGET_ID":"n2"}`, true, "n2"}, // encoding/json matches names case-insensitively
	{`{"target_id":"a","target_id":"b"}`, true, "b"},
	{`{"target_id":"\u00f1ode-\u00e9"}`, true, "\u00f1ode-\u00e9"},
	{`{"target_id":"\ud800"}`, true, "\ufffd"},   // lone surrogate escape
	{"{\"target_id\":\"\xff\"}", true, "\ufffd"}, // invalid UTF-8
	{`{"target_id":"` + strings.Repeat("a", 256) + `"}`, true, strings.Repeat("a", 256)},
	{`{"target_id":"` + strings.Repeat("a", 257) + `"}`, false, ""},
	{`{"target_id":"` + strings.Repeat("\u00e9", 129) + `"}`, false, ""}, // 258 bytes
	{`{"target_id":"n2"} trailing`, false, ""},
	{`{"target_id":"n2"}{}`, false, ""},
	{`{"target_id":"n2"} // comment`, false, ""},
	{`{"target_id":"n2"},`, false, ""},
	{`{"target_id":"n2","extra":1}`, false, ""},
	{`{"targetId":"n2"}`, false, ""},
	{`{"target_id":5}`, false, ""},
	{`{"target_id":["n2"]}`, false, ""},
	{`{"target_id":{"nested":[1,{"x":null},[[[]]]]}}`, false, ""},
	{`{"x":{"y":{"z":[1,2,{"w":"v"}]}}}`, false, ""},
	{`[]`, false, ""},
	{`"n2"`, false, ""},
	{`0`, false, ""},
	{`{`, false, ""},
	{`{"target_id":"n2"`, false, ""},
	{"\xef\xbb\xbf{}", false, ""}, // byte order mark
	{"\x00", false, ""},
}

func TestDecodeTransferSeeds(t *testing.T) {
	for _, c := range fzTransferCases {
		got, err := decodeTransfer([]byte(c.body))
		if (err == nil) != c.ok || got.TargetID != c.want {
			t.Errorf("decodeTransfer(%.80q) = %+v, %v; want %q, ok=%v", c.body, got, err, c.want, c.ok)
		}
		fzCheckErrSize(t, err)
	}
}

func FuzzDecodeTransfer(f *testing.F) {
	for _, c := range fzTransferCases {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeTransfer(data)
		if err != nil {
			if req != (client.TransferRequest{}) {
				t.Fatalf("decodeTransfer(%q) failed but returned %+v", data, req)
			}
			if len(bytes.TrimSpace(data)) == 0 {
				t.Fatalf("decodeTransfer(%q) refused a blank body: %v", data, err)
			}
			return
		}
		if len(req.TargetID) > 256 {
			t.Fatalf("decodeTransfer(%q) accepted a %d-byte target_id", data, len(req.TargetID))
		}
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) == 0 {
			if req != (client.TransferRequest{}) {
				t.Fatalf("decodeTransfer(%q) = %+v, want the zero value for a blank body", data, req)
			}
			return
		}
		// A non-blank body that decodes is exactly one JSON value: an object,
		// or null (which encoding/json accepts as "no fields").
		if !json.Valid(data) || (trimmed[0] != '{' && string(trimmed) != "null") {
			t.Fatalf("decodeTransfer(%q) accepted something that is not one JSON object", data)
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", req, err)
		}
		back, err := decodeTransfer(enc)
		if err != nil || back != req {
			t.Fatalf("decodeTransfer(%q) = %+v, but its re-encoding %q decodes to %+v, %v", data, req, enc, back, err)
		}
	})
}

// ---------------------------------------------------------------------------
// decodeProtoJSON

// fzProtoTypes are the messages the gateway decodes with decodeProtoJSON.
var fzProtoTypes = []struct {
	name string
	new  func() proto.Message
}{
	{"JoinRequest", func() proto.Message { return &messages.JoinRequest{} }},
	{"TransferLeadershipRequest", func() proto.Message { return &messages.TransferLeadershipRequest{} }},
	{"Propose", func() proto.Message { return &messages.Propose{} }},
	{"RebalanceRequest", func() proto.Message { return &messages.RebalanceRequest{} }},
}

var fzProtoCases = []struct {
	msg  string // a name in fzProtoTypes
	body string
	ok   bool
}{
	{"JoinRequest", "", false},
	{"JoinRequest", " \n\t", false},
	{"JoinRequest", "\u00a0", false}, // strings.TrimSpace is Unicode-aware
	{"JoinRequest", "{}", true},
	{"JoinRequest", "null", false},
	{"JoinRequest", "[]", false},
	{"JoinRequest", `"x"`, false},
	{"JoinRequest", `{"member":{"id":"n4","address":"127.0.0.1:7004","services":{"kv":":9080"}}}`, true},
	{"JoinRequest", `{"member":{"id":"n4"}} trailing`, false},
	{"JoinRequest", `{"member":{"id":"n4"}}{}`, false},
	{"JoinRequest", `{"member":{"id":"n4"}}   `, true},
	{"JoinRequest", `{"unknown":1}`, false},
	{"JoinRequest", `{"member":{"nested":{"garbage":[1,{"x":null}]}}}`, false},
	{"JoinRequest", `{"member":null}`, true},
	{"JoinRequest", `{"member":{"id":"n4"},"member":{"id":"n5"}}`, false}, // duplicate field
	{"JoinRequest", `{"lastAliveUnixNano":"123"}`, true},
	{"JoinRequest", `{"last_alive_unix_nano":-1}`, true},
	{"JoinRequest", `{"last_alive_unix_nano":1e3}`, true},
	{"JoinRequest", `{"last_alive_unix_nano":1.5}`, false},
	{"JoinRequest", `{"member":{"incarnation":"18446744073709551615"}}`, true},
	{"JoinRequest", `{"member":{"incarnation":"18446744073709551616"}}`, false},
	{"JoinRequest", `{"member":{"incarnation":-1}}`, false},
	{"JoinRequest", `{"forwarded":"true"}`, false},
	{"JoinRequest", `{"expect":{"keyHash":"KEY_HASH_XXH64"}}`, true},
	{"JoinRequest", `{"expect":{"key_hash":99}}`, true}, // open enum
	{"JoinRequest", `{"expect":{"key_hash":"NOPE"}}`, false},
	{"JoinRequest", `{"member":{"id":"\u00f1\u00f6de"}}`, true},
	{"JoinRequest", "{\"member\":{\"id\":\"\xff\"}}", false}, // invalid UTF-8
	{"JoinRequest", `{"member":{"id":"\ud800"}}`, false},     // lone surrogate
	{"TransferLeadershipRequest", `{}`, true},
	{"TransferLeadershipRequest", `{"targetId":"n2"}`, true},
	{"TransferLeadershipRequest", `{"target_id":"n2","forwarded":true}`, true},
	{"TransferLeadershipRequest", `{"target_id":1}`, false},
	{"TransferLeadershipRequest", `{"target_id":"n2"} x`, false},
	{"TransferLeadershipRequest", `{"@type":"x"}`, false},
	{"TransferLeadershipRequest", `{"TARGET_ID":"n2"}`, false},
	{"Propose", `{"command":{"noop":{}}}`, true},
	{"Propose", `{"command":{"set_custom_data":{"key":"k","value":"aGk="}}}`, true},
	{"Propose", `{"command":{"set_custom_data":{"key":"k","value":"!!"}}}`, false},
	{"Propose", `{"command":{"noop":{},"set_config":{}}}`, false}, // two oneof members
	{"RebalanceRequest", `{"trigger":"manual","trigger_node_id":"n1"}`, true},
}

func TestDecodeProtoJSONSeeds(t *testing.T) {
	for _, c := range fzProtoCases {
		var m proto.Message
		for _, typ := range fzProtoTypes {
			if typ.name == c.msg {
				m = typ.new()
			}
		}
		if m == nil {
			t.Fatalf("unknown message %q", c.msg)
		}
		err := decodeProtoJSON([]byte(c.body), m)
		if (err == nil) != c.ok {
			t.Errorf("decodeProtoJSON(%q, %s) = %v; want ok=%v", c.body, c.msg, err, c.ok)
		}
	}
}

func FuzzDecodeProtoJSON(f *testing.F) {
	for _, c := range fzProtoCases {
		f.Add([]byte(c.body))
	}
	for _, c := range fzTransferCases {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		blank := len(strings.TrimSpace(string(data))) == 0
		for _, typ := range fzProtoTypes {
			m := typ.new()
			err := decodeProtoJSON(data, m)
			if err != nil {
				if blank && err.Error() != "empty body" {
					t.Fatalf("decodeProtoJSON(%q, %s) = %v, want empty body", data, typ.name, err)
				}
				continue
			}
			if blank {
				t.Fatalf("decodeProtoJSON(%q, %s) accepted a blank body", data, typ.name)
			}
			// Both spellings the gateway writes (answer uses proto names)
			// decode to an equal message, and so does the binary form.
			for _, opts := range []protojson.MarshalOptions{{}, {UseProtoNames: true}, {EmitUnpopulated: true}} {
				out, err := opts.Marshal(m)
				if err != nil {
					t.Fatalf("protojson.Marshal of %s decoded from %q: %v", typ.name, data, err)
				}
				back := typ.new()
				if err := decodeProtoJSON(out, back); err != nil || !proto.Equal(m, back) {
					t.Fatalf("%s: %q decodes, but its re-encoding %q gives %v, %v", typ.name, data, out, back, err)
				}
			}
			bin, err := proto.Marshal(m)
			if err != nil {
				t.Fatalf("proto.Marshal of %s decoded from %q: %v", typ.name, data, err)
			}
			back := typ.new()
			if err := proto.Unmarshal(bin, back); err != nil || !proto.Equal(m, back) {
				t.Fatalf("%s: %q decodes, but its binary form gives %v, %v", typ.name, data, back, err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// etagMatch (If-None-Match)

var fzETagCases = []struct {
	header  string
	version uint64
	want    bool
}{
	{`"7"`, 7, true},
	{`W/"7"`, 7, true},
	{`"6", "7"`, 7, true},
	{` "6" ,W/"7" `, 7, true},
	{`*`, 7, true},
	{`"6"`, 7, false},
	{`7`, 7, false},
	{`"7`, 7, false},
	{`w/"7"`, 7, false},
	{`W/ "7"`, 7, false},
	{`""`, 0, false},
	{`"0"`, 0, true},
	{`,,,`, 7, false},
	{`"18446744073709551615"`, math.MaxUint64, true},
}

func TestETagMatchSeeds(t *testing.T) {
	for _, c := range fzETagCases {
		etag := `"` + strconv.FormatUint(c.version, 10) + `"`
		if got := etagMatch(c.header, etag); got != c.want {
			t.Errorf("etagMatch(%q, %s) = %v, want %v", c.header, etag, got, c.want)
		}
	}
}

func FuzzETagMatch(f *testing.F) {
	for _, c := range fzETagCases {
		f.Add(c.header, c.version)
	}
	f.Fuzz(func(t *testing.T, header string, version uint64) {
		etag := `"` + strconv.FormatUint(version, 10) + `"`
		got := etagMatch(header, etag)
		for _, h := range []string{etag, "W/" + etag, "*", " " + etag + " "} {
			if !etagMatch(h, etag) {
				t.Fatalf("etagMatch(%q, %s) = false", h, etag)
			}
		}
		// A list matches when one of its members does: adding members
		// never turns a match into a miss, and a listed etag always matches.
		if got && (!etagMatch(header+`, "x"`, etag) || !etagMatch(`"x",`+header, etag)) {
			t.Fatalf("etagMatch(%q, %s) = true, but not with another member listed", header, etag)
		}
		if !etagMatch(header+","+etag, etag) || !etagMatch(etag+","+header, etag) {
			t.Fatalf("etagMatch(%q + %s) = false", header, etag)
		}
		// Without '*' or the etag's digits nothing can match.
		if got && !strings.Contains(header, "*") && !strings.Contains(header, etag) {
			t.Fatalf("etagMatch(%q, %s) = true", header, etag)
		}
	})
}

// ---------------------------------------------------------------------------
// The whole gateway

// fzFixture is the state shared by every fake backend: a real view with three
// members and an 8-partition table, built by applying commands to a real FSM,
// and a real event log holding the events those commands produced.
type fzFixture struct {
	view   *raftfsm.View
	events *eventlog.Log
	reg    *prometheus.Registry
}

var fzShared = sync.OnceValues(func() (*fzFixture, error) {
	fsm := raftfsm.New("n1", nil)
	var applied []*raftfsm.Applied
	fsm.SetNotifier(func(a *raftfsm.Applied) { applied = append(applied, a) })

	register := func(id string, port int) *messages.Command {
		return &messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{Member: &messages.Member{
			Id: id, Name: id, Address: "127.0.0.1:" + strconv.Itoa(port), Incarnation: 1, Services: map[string]string{"kv": ":9080"},
		}}}}
	}
	const partitions = 8
	ids := []string{"n1", "n2", "n3"}
	parts := make([]*messages.PartitionAssignment, partitions)
	for i := range parts {
		parts[i] = &messages.PartitionAssignment{Owners: []string{ids[i%3], ids[(i+1)%3]}}
	}
	cmds := []*messages.Command{
		{Op: &messages.Command_SetConfig{SetConfig: &messages.SetConfig{Config: &messages.ClusterConfig{
			ClusterName: "fuzz", PartitionCount: partitions, ReplicationFactor: 2, MaxVoters: 5,
		}}}},
		register("n1", 7001), register("n2", 7002), register("n3", 7003),
		{Op: &messages.Command_SetPartitionTable{SetPartitionTable: &messages.SetPartitionTable{
			Partitions: parts, Rebalance: &messages.RebalanceInfo{Trigger: raftfsm.TriggerNodeJoin, TriggerNodeId: "n3"},
		}}},
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, cmd := range cmds {
		cmd.TimeUnixNano = start.Add(time.Duration(i) * time.Second).UnixNano()
		data, err := raftfsm.Encode(cmd)
		if err != nil {
			return nil, err
		}
		res, _ := fsm.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data}).(*raftfsm.ApplyResult)
		if res == nil || res.Err != nil {
			return nil, fmt.Errorf("apply %d: %v", i+1, res)
		}
	}
	log := eventlog.New(14, actors.Seq{})
	for _, a := range applied {
		for _, e := range raftfsm.Events(a, start.Add(time.Minute)) {
			log.Append(e)
		}
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "fuzz_requests_total", Help: "Fuzzed requests."})
	c.Add(3)
	reg.MustRegister(c)
	v := fsm.View()
	if !v.HasTable() || len(v.Members()) != 3 || log.Len() == 0 {
		return nil, fmt.Errorf("fixture: table %v, %d members, %d events", v.HasTable(), len(v.Members()), log.Len())
	}
	return &fzFixture{view: v, events: log, reg: reg}, nil
})

func fzGetFixture(tb testing.TB) *fzFixture {
	tb.Helper()
	fx, err := fzShared()
	if err != nil {
		tb.Fatal(err)
	}
	return fx
}

// fzMode varies the fake backend's answers.
type fzMode uint8

const (
	fzStopped   fzMode = 1 << iota // Status().Running is false
	fzNoLeader                     // no leader known
	fzFailing                      // Leave, RemoveNode, RebalanceNow and PlanRebalance fail
	fzRefusing                     // Join, Propose, Rebalance and TransferLeadership refuse
	fzBadJSON                      // Detailed and MetricsJSON have no answer (nil)
	fzETag                         // the request carries If-None-Match with the current etag
	fzModeCount = 1 << iota
)

const fzToken = "tok"

// fzTokens are the fake node's tokens: fzToken (admin) and "rtok" (read).
var fzTokens = func() *auth.Tokens {
	t, err := auth.New([]string{fzToken}, []string{"rtok"})
	if err != nil {
		panic(err)
	}
	return t
}()

// fzBackend is a Backend over the shared fixture that records calls.
type fzBackend struct {
	fx   *fzFixture
	mode fzMode

	mu       sync.Mutex
	mutating []string // calls of the mutating methods
	counted  []fzCount
}

type fzCount struct {
	route  string
	status int
}

var _ Backend = (*fzBackend)(nil)

func (b *fzBackend) called(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mutating = append(b.mutating, name)
}

func (b *fzBackend) NodeID() string        { return "n1" }
func (b *fzBackend) View() *raftfsm.View   { return b.fx.view }
func (b *fzBackend) AuthToken() string     { return fzToken }
func (b *fzBackend) Events() *eventlog.Log { return b.fx.events }

func (b *fzBackend) Metrics() prometheus.Gatherer { return b.fx.reg }

func (b *fzBackend) Status() Status {
	st := Status{Running: b.mode&fzStopped == 0, State: "running", Leader: "n1"}
	if !st.Running {
		st.State = "stopped"
	}
	if b.mode&fzNoLeader != 0 {
		st.Leader = ""
	}
	return st
}

func (b *fzBackend) Consensus() Consensus {
	c := Consensus{State: "Leader", LeaderID: "n1", LeaderAddress: "127.0.0.1:7001", Term: 3, Voters: []string{"n1", "n2", "n3"}, Raw: map[string]string{"state": "Leader"}}
	if b.mode&fzNoLeader != 0 {
		c.State, c.LeaderID, c.LeaderAddress = "Candidate", "", ""
	}
	return c
}

func (b *fzBackend) Detailed() *client.DetailedHealth {
	if b.mode&fzBadJSON != 0 {
		return nil
	}
	return &client.DetailedHealth{Healthy: true, NodeID: "n1", NodeCount: 3}
}

func (b *fzBackend) MetricsJSON() *client.Metrics {
	if b.mode&fzBadJSON != 0 {
		return nil
	}
	return &client.Metrics{RequestCount: 3}
}

func (b *fzBackend) CountRequest(route string, status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counted = append(b.counted, fzCount{route, status})
}

// Custom data: one fixed key "k" at version 7; writes are recorded.
func (b *fzBackend) CustomData(key string) ([]byte, uint64, error) {
	if key == "k" {
		return []byte("v"), 7, nil
	}
	return nil, 0, &StatusError{Status: http.StatusNotFound, Code: "key_not_found", Err: errors.New("no such key")}
}

func (b *fzBackend) CustomDataLinearizable(_ context.Context, key string) ([]byte, uint64, error) {
	return b.CustomData(key)
}

func (b *fzBackend) CustomDataKeys() []string { return []string{"k"} }

func (b *fzBackend) SetCustomData(_ context.Context, key string, _ []byte, cas bool, expected uint64) (uint64, error) {
	b.called("SetCustomData")
	if cas && expected != 7 {
		return 0, &StatusError{Status: http.StatusPreconditionFailed, Code: "version_mismatch", Err: errors.New("version mismatch")}
	}
	return 8, nil
}

func (b *fzBackend) DeleteCustomData(_ context.Context, key string) (uint64, error) {
	b.called("DeleteCustomData")
	if key != "k" {
		return 0, &StatusError{Status: http.StatusNotFound, Code: "key_not_found", Err: errors.New("no such key")}
	}
	return 9, nil
}

func (b *fzBackend) RebalanceNow(context.Context) error {
	b.called("RebalanceNow")
	if b.mode&fzFailing != 0 {
		return errors.New("backend: rebalance failed") // a plain error: 500
	}
	return nil
}

// PlanRebalance changes nothing: it is no mutating call.
func (b *fzBackend) PlanRebalance() (*client.RebalancePlan, error) {
	if b.mode&fzFailing != 0 {
		return nil, errors.New("backend: plan failed") // a plain error: 500
	}
	return &client.RebalancePlan{Partitions: []client.PlannedPartition{{PartitionID: "partition-3",
		Current: []string{"n1", "n2"}, Target: []string{"n3", "n2"}, Add: []string{"n3"}, Release: []string{"n1"}}},
		Moves: 1, PrimaryChanges: 1}, nil
}

func (b *fzBackend) Leave(context.Context) error {
	b.called("Leave")
	if b.mode&fzFailing != 0 {
		return &StatusError{Status: http.StatusServiceUnavailable, Code: "backend_stopped", Err: errors.New("node is stopping")}
	}
	return nil
}

func (b *fzBackend) RemoveNode(_ context.Context, id string) error {
	b.called("RemoveNode")
	if b.mode&fzFailing != 0 {
		if id == "n3" {
			return fmt.Errorf("remove: %w", &StatusError{Status: http.StatusNotFound, Code: "backend_not_found", Err: errors.New("gone meanwhile")})
		}
		return fmt.Errorf("remove: %w", &StatusError{Status: http.StatusPreconditionFailed, Code: "backend_version_mismatch", Err: errors.New("version moved")})
	}
	return nil
}

func (b *fzBackend) SetDrain(_ context.Context, id string, drain bool) error {
	b.called("SetDrain")
	if b.mode&fzFailing != 0 {
		return fmt.Errorf("drain: %w", &StatusError{Status: http.StatusConflict, Code: "no_holder", Err: errors.New("no member would be left to hold partitions")})
	}
	return nil
}

func (b *fzBackend) SetRebalancePaused(_ context.Context, paused bool) error {
	b.called("SetRebalancePaused")
	if b.mode&fzFailing != 0 {
		return errors.New("backend: pause failed") // a plain error: 500
	}
	return nil
}

// fzTransferCodes are target IDs the fake answers with that failure code.
var fzTransferCodes = []string{"invalid_target", "no_other_voter", "not_leader", "unavailable", "timeout", "weird"}

func (b *fzBackend) TransferLeadership(_ context.Context, req *messages.TransferLeadershipRequest) *messages.TransferLeadershipResponse {
	b.called("TransferLeadership")
	target := req.GetTargetId()
	if slices.Contains(fzTransferCodes, target) {
		return &messages.TransferLeadershipResponse{Code: target, Error: "transfer failed: " + target}
	}
	if b.mode&fzRefusing != 0 {
		return &messages.TransferLeadershipResponse{Code: "not_leader", Error: "not the leader"}
	}
	if target == "" {
		target = "n2"
	}
	return &messages.TransferLeadershipResponse{LeaderId: target}
}

func (b *fzBackend) Join(_ context.Context, req *messages.JoinRequest) *messages.JoinResponse {
	b.called("Join")
	switch {
	case req.GetMember().GetId() == "follower":
		return &messages.JoinResponse{Code: "not_leader", Error: "not the leader", LeaderId: "n2"}
	case b.mode&fzRefusing != 0:
		return &messages.JoinResponse{Code: "duplicate_node", Error: "refused"}
	}
	return &messages.JoinResponse{Accepted: true, Index: b.fx.view.Version(), LeaderId: "n1"}
}

func (b *fzBackend) ProposeBatch(_ context.Context, req *messages.ProposeBatch) *messages.ProposeBatchResult {
	out := &messages.ProposeBatchResult{}
	for range req.GetProposals() {
		out.Results = append(out.Results, &messages.ProposeResult{Code: "not_leader", Error: "fuzz"})
	}
	return out
}

func (b *fzBackend) Propose(context.Context, *messages.Propose) *messages.ProposeResult {
	b.called("Propose")
	if b.mode&fzRefusing != 0 {
		return &messages.ProposeResult{Code: "not_leader", Error: "not the leader"}
	}
	return &messages.ProposeResult{Index: 42}
}

func (b *fzBackend) Rebalance(context.Context, *messages.RebalanceRequest) *messages.ProposeResult {
	b.called("Rebalance")
	if b.mode&fzRefusing != 0 {
		return &messages.ProposeResult{Code: "not_leader", Error: "not the leader"}
	}
	return &messages.ProposeResult{Index: 43}
}

func (b *fzBackend) Ping(context.Context, *messages.PingRequest) *messages.PingResponse {
	return &messages.PingResponse{NodeId: "n1", Incarnation: 1, ClusterName: "fuzz", ClusterId: fzClusterID, Nonce: 7}
}

func (b *fzBackend) MemberStatus(req *messages.MemberStatusRequest) *messages.MemberStatusResponse {
	return &messages.MemberStatusResponse{ClusterId: fzClusterID, NodeId: "n1", AppliedIndex: 9}
}

const fzClusterID = "0123456789abcdef0123456789abcdef"

func (b *fzBackend) ClusterID() string { return fzClusterID }

// fzStatuses are every status the gateway answers with: its own (200, 304,
// 400, 401, 404, 405, 409, 410, 413, 415, 500, 503, 504) and those a Backend
// picks through StatusError (the real one, gateway.go's httpError, uses 400,
// 404, 409, 412, 413, 500 and 503; so does the fake). ServeMux's redirect of
// unclean paths is replaced by the gateway's own 400 bad_path.
var fzStatuses = []int{200, 302, 304, 400, 401, 403, 404, 405, 409, 410, 412, 413, 415, 500, 503, 504}

// fzPreCallCodes are the error codes the gateway answers before it calls the
// backend: a response with one of them must follow no mutating call.
var fzPreCallCodes = []string{
	"bad_request", "unexpected_body", "body_too_large", "unsupported_media_type", "is_self", "unknown_node",
	"unauthorized", "forbidden", "too_many_auth_failures", "too_many_streams", "method_not_allowed", "not_found", "bad_path", "bad_pagination", "bad_kinds", "bad_seq", "events_gone",
	"missing_key", "key_too_long", "unknown_partition", "not_ready", "bad_format",
}

// fzRoutes are the patterns the gateway registers: the only route labels it
// may count (besides "unmatched").
var fzRoutes = []string{
	"/health", "/health/detailed", "/ready", "/cluster", "/nodes", "/nodes/{id}", "/partitions",
	"/partitions/stats", "/partitions/{id}", "/locate", "/consensus/leader", "/consensus/stats", "/metrics",
	"/events", "/join", "/leave", "/rebalance", "/leadership/transfer", "/{$}", "/ui/{file...}",
	rpc.PathJoin, rpc.PathPropose, rpc.PathRebalance, rpc.PathPing, rpc.PathTransferLeadership, "unmatched",
}

// fzMethods are the methods FuzzGatewayRequests sends. CONNECT is left out:
// ServeMux routes it by other rules (no path cleaning).
var fzMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodPatch, http.MethodOptions, http.MethodTrace,
}

// fzPickMethod uses method when it is in fzMethods, else indexes fzMethods
// with its first byte.
func fzPickMethod(method string) string {
	if slices.Contains(fzMethods, method) || method == "" {
		return cmp.Or(method, http.MethodGet)
	}
	return fzMethods[int(method[0])%len(fzMethods)]
}

// fzTarget builds the request target, or false when httptest.NewRequest
// would refuse it: its request line is "METHOD target HTTP/1.0", parsed by
// http.ReadRequest with url.ParseRequestURI.
func fzTarget(p, query string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	target := p
	if query != "" {
		target += "?" + query
	}
	if strings.ContainsAny(target, " \r\n") {
		return "", false
	}
	if _, err := url.Parse(target); err != nil {
		return "", false
	}
	if _, err := url.ParseRequestURI(target); err != nil {
		return "", false
	}
	return target, true
}

// fzNewRequest is httptest.NewRequestWithContext, or nil if it panics
// anyway (an input fzTarget did not foresee is skipped, not reported).
func fzNewRequest(ctx context.Context, method, target string, body []byte) (r *http.Request) {
	defer func() {
		if recover() != nil {
			r = nil
		}
	}()
	return httptest.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
}

// fzCleanPath is ServeMux's cleanPath: path.Clean keeping a trailing slash.
func fzCleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// fzRequest is one request to serve.
type fzRequest struct {
	method, target, contentType string
	body                        []byte
	auth                        string // the Authorization header ("" = none)
	mode                        fzMode
}

// fzServe serves r with a new gateway over a new fake backend and checks the
// invariants that hold for every request. It returns nil (after checking
// nothing) when httptest cannot build the request.
//
// GET /events streams until the request context ends or the gateway closes:
// every request gets a 50ms context, and the gateway is closed before it
// serves, so a stream writes its first batch and returns at once.
func fzServe(t *testing.T, fx *fzFixture, r fzRequest) (*httptest.ResponseRecorder, *fzBackend) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := fzNewRequest(ctx, r.method, r.target, r.body)
	if req == nil {
		return nil, nil
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	if r.mode&fzETag != 0 {
		req.Header.Set("If-None-Match", fmt.Sprintf(`W/"%d"`, fx.view.Version()))
	}
	b := &fzBackend{fx: fx, mode: r.mode}
	g := New(b, slog.New(slog.DiscardHandler), Security{Tokens: func() *auth.Tokens { return fzTokens }})
	g.Close()
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)

	desc := fmt.Sprintf("%s %.200q (Content-Type %.100q, auth %q, mode %06b, body %.200q)", r.method, r.target, r.contentType, r.auth, r.mode, r.body)
	status, body, h := rec.Code, rec.Body.Bytes(), rec.Header()
	ct := h.Get("Content-Type")

	if tok, ok := auth.Bearer(r.auth); (!ok || tok != fzToken) && len(b.mutating) > 0 {
		t.Fatalf("%s: called %v without the cluster token (answered %d)", desc, b.mutating, status)
	}
	if len(b.mutating) > 1 {
		t.Fatalf("%s: called %v: more than one mutating call", desc, b.mutating)
	}

	// Paths ServeMux would clean (and redirect, in HTML) are refused first.
	if p := req.URL.Path; fzCleanPath(p) != p && p != "" {
		if status != http.StatusBadRequest || len(b.mutating) != 0 {
			t.Fatalf("%s: unclean path %q answered %d, calls %v", desc, p, status, b.mutating)
		}
	}
	if !slices.Contains(fzStatuses, status) {
		t.Fatalf("%s: status %d is not one the gateway uses; body %.300q", desc, status, body)
	}
	// Every answer is counted once, with its status and a bounded route label.
	if len(b.counted) != 1 || b.counted[0].status != status || !slices.Contains(fzRoutes, b.counted[0].route) {
		t.Fatalf("%s: answered %d but counted %v", desc, status, b.counted)
	}

	switch {
	case status == http.StatusFound:
		if req.URL.Path != "/" || h.Get("Location") != "/ui/" || len(body) != 0 {
			t.Fatalf("%s: 302 to %q with body %.300q", desc, h.Get("Location"), body)
		}
	case status == http.StatusNotModified:
		if len(body) != 0 || h.Get("ETag") == "" {
			t.Fatalf("%s: 304 with ETag %q and body %.300q", desc, h.Get("ETag"), body)
		}
	case status >= 200 && status < 300:
		switch {
		case ct == "application/json":
			if !json.Valid(body) {
				t.Fatalf("%s: %d with an invalid JSON body %.300q", desc, status, body)
			}
		case ct == rpc.ContentType:
			if !strings.HasPrefix(req.URL.Path, "/internal/") {
				t.Fatalf("%s: a protobuf answer on a public route", desc)
			}
		case ct == "text/event-stream":
			if !bytes.HasPrefix(body, []byte("retry: 1000\n")) {
				t.Fatalf("%s: event stream starts with %.300q", desc, body)
			}
		case strings.HasPrefix(ct, "text/html"), strings.HasPrefix(ct, "text/javascript"), strings.HasPrefix(ct, "text/css"):
			if !strings.HasPrefix(req.URL.Path, "/ui/") || h.Get("Content-Security-Policy") == "" {
				t.Fatalf("%s: %s answer on %s (CSP %q)", desc, ct, req.URL.Path, h.Get("Content-Security-Policy"))
			}
		case strings.HasPrefix(ct, "text/plain"):
			if req.URL.Path != "/metrics" {
				t.Fatalf("%s: text answer on %s", desc, req.URL.Path)
			}
		default:
			t.Fatalf("%s: %d with Content-Type %q", desc, status, ct)
		}
	default:
		if ct != "application/json" {
			t.Fatalf("%s: %d with Content-Type %q; body %.300q", desc, status, ct, body)
		}
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: %d with body %.300q: %v", desc, status, body, err)
		}
		// The probes are the one exception to {"error", "code"}: their 503
		// is the answer, and its body is the same status document as the 200
		// (health: "status": "stopped"; ready: "ready": false and "reasons").
		if route := b.counted[0].route; status == http.StatusServiceUnavailable && (route == "/health" || route == "/ready") {
			if e["node_id"] != "n1" || (route == "/health" && e["status"] != "stopped") || (route == "/ready" && (e["ready"] != false || e["reasons"] == nil)) {
				t.Fatalf("%s: probe 503 with body %.300q", desc, body)
			}
			break
		}
		msg, _ := e["error"].(string)
		code, _ := e["code"].(string)
		if msg == "" || code == "" {
			t.Fatalf("%s: %d with body %.300q: want a non-empty error and code", desc, status, body)
		}
		if slices.Contains(fzPreCallCodes, code) && len(b.mutating) > 0 {
			t.Fatalf("%s: answered %d %s after calling %v", desc, status, code, b.mutating)
		}
		switch status {
		case http.StatusUnauthorized:
			if h.Get("WWW-Authenticate") == "" || code != "unauthorized" {
				t.Fatalf("%s: 401 %s without WWW-Authenticate", desc, code)
			}
		case http.StatusMethodNotAllowed:
			if h.Get("Allow") == "" {
				t.Fatalf("%s: 405 without Allow", desc)
			}
		}
	}
	if ct == "application/json" {
		if cl := h.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Fatalf("%s: Content-Length %q for %d bytes", desc, cl, len(body))
		}
	}
	return rec, b
}

// fzGatewayCases are requests with the status they get with the token; with
// no token they get the same status when public, else 401.
var fzGatewayCases = []struct {
	method, path, query, contentType, body string
	mode                                   fzMode
	want                                   int
	public                                 bool
}{
	{"GET", "/health", "", "", "", 0, 200, true},
	{"HEAD", "/health", "", "", "", 0, 200, true},
	{"GET", "/health", "", "", "", fzStopped, 503, true},
	{"OPTIONS", "/health", "", "", "", 0, 405, true},
	{"POST", "/health", "", "application/json", "{}", 0, 405, true},
	{"GET", "/health/detailed", "", "", "", 0, 200, true},
	{"GET", "/health/detailed", "", "", "", fzBadJSON, 500, true},
	{"GET", "/ready", "", "", "", 0, 200, true},
	{"GET", "/ready", "", "", "", fzNoLeader, 503, true},
	{"GET", "/cluster", "", "", "", 0, 200, true},
	{"GET", "/cluster", "", "", "", fzETag, 304, true},
	{"GET", "/nodes", "", "", "", 0, 200, true},
	{"GET", "/nodes", "offset=1&limit=1", "", "", 0, 200, true},
	{"GET", "/nodes", "offset=2147483647", "", "", 0, 200, true},
	{"GET", "/nodes", "offset=-1", "", "", 0, 400, true},
	{"GET", "/nodes", "offset=+5", "", "", 0, 400, true},
	{"GET", "/nodes", "offset=1e3", "", "", 0, 400, true},
	{"GET", "/nodes", "limit=0", "", "", 0, 400, true},
	{"GET", "/nodes", "limit=99999999999999999999", "", "", 0, 400, true},
	{"GET", "/nodes", "offset=%zz&limit=%", "", "", 0, 200, true},
	{"GET", "/nodes", "", "", "", fzETag, 304, true},
	{"GET", "/nodes/n2", "", "", "", 0, 200, true},
	{"GET", "/nodes/ghost", "", "", "", 0, 404, true},
	{"GET", "/nodes/%C3%B1", "", "", "", 0, 404, true},
	{"GET", "/nodes/", "", "", "", 0, 404, true},
	{"PUT", "/nodes/n2", "", "", "", 0, 405, true},
	{"DELETE", "/nodes/n1", "", "", "", 0, 400, false},
	{"DELETE", "/nodes/n2", "", "", "", 0, 200, false},
	{"DELETE", "/nodes/n2", "", "", "{}", 0, 200, false},
	{"DELETE", "/nodes/n2", "", "", `{"force":true}`, 0, 400, false},
	{"DELETE", "/nodes/n2", "", "", "", fzFailing, 412, false},
	{"DELETE", "/nodes/n3", "", "", "", fzFailing, 404, false},
	{"DELETE", "/nodes/ghost", "", "", "", 0, 404, false},
	{"GET", "/partitions", "", "", "", 0, 200, true},
	{"GET", "/partitions", "limit=1001", "", "", 0, 400, true},
	{"GET", "/partitions/partition-0", "", "", "", 0, 200, true},
	{"GET", "/partitions/7", "", "", "", 0, 200, true},
	{"GET", "/partitions/007", "", "", "", 0, 200, true},
	{"GET", "/partitions/partition-7", "", "", "", fzETag, 304, true},
	{"GET", "/partitions/partition-", "", "", "", 0, 404, true},
	{"GET", "/partitions/8", "", "", "", 0, 404, true},
	{"GET", "/partitions/-1", "", "", "", 0, 404, true},
	{"GET", "/partitions/+5", "", "", "", 0, 404, true},
	{"GET", "/partitions/1e3", "", "", "", 0, 404, true},
	{"GET", "/partitions/stats", "", "", "", 0, 200, true},
	{"GET", "/partitions/stats", "", "", "", fzETag, 304, true},
	{"GET", "/locate", "key=user:1", "", "", 0, 200, true},
	{"GET", "/locate", "key=%F0%9F%94%91", "", "", 0, 200, true},
	{"GET", "/locate", "", "", "", 0, 400, true},
	{"GET", "/locate", "key=", "", "", 0, 400, true},
	{"GET", "/locate", "key=" + strings.Repeat("k", maxKeyLength+1), "", "", 0, 400, true},
	{"GET", "/consensus/leader", "", "", "", 0, 200, true},
	{"GET", "/consensus/leader", "", "", "", fzNoLeader, 503, true},
	{"GET", "/consensus/stats", "", "", "", 0, 200, true},
	{"GET", "/metrics", "", "", "", 0, 200, true},
	{"GET", "/metrics", "format=json", "", "", 0, 200, true},
	{"GET", "/metrics", "format=json", "", "", fzBadJSON, 500, true},
	{"GET", "/metrics", "format=xml", "", "", 0, 400, true},
	{"GET", "/events", "", "", "", 0, 200, true},
	{"GET", "/events", "kinds=node_join,partition_change", "", "", 0, 200, true},
	{"GET", "/events", "kinds=bogus", "", "", 0, 400, true},
	{"GET", "/events", "kinds=,", "", "", 0, 400, true},
	{"GET", "/events", "since=0.0", "", "", 0, 410, true},
	{"GET", "/events", "since=5.1", "", "", 0, 410, true}, // the fixture's log keeps 5.3 to 5.16, floor 5.2
	{"GET", "/events", "since=5.2", "", "", 0, 200, true},
	{"GET", "/events", "since=5.10&kinds=partition_change,rebalance_complete", "", "", 0, 200, true},
	{"GET", "/events", "since=5", "", "", 0, 200, true},
	{"GET", "/events", "since=999999.0", "", "", 0, 200, true},
	{"GET", "/events", "since=abc", "", "", 0, 400, true},
	{"GET", "/events", "since=-1", "", "", 0, 400, true},
	{"GET", "/events", "since=01.2", "", "", 0, 400, true},
	{"POST", "/events", "", "", "", 0, 405, true},
	{"POST", "/join", "", "application/json", `{"member":{"id":"n4","address":"127.0.0.1:7004"}}`, 0, 200, false},
	{"POST", "/join", "", "application/json; charset=utf-8", `{"member":{"id":"n4","address":"127.0.0.1:7004"}}`, 0, 200, false},
	{"POST", "/join", "", "application/json", `{"member":{"id":"n4"}}`, fzRefusing, 409, false},
	{"POST", "/join", "", "application/json", `{"member":{"id":"follower"}}`, 0, 503, false},
	{"POST", "/join", "", "application/json", `{}`, 0, 400, false},
	{"POST", "/join", "", "application/json", ``, 0, 400, false},
	{"POST", "/join", "", "application/json", `{"member":{"id":"n4"}} trailing`, 0, 400, false},
	{"POST", "/join", "", "application/json", `{"member":{"id":"n4"},"unknown":1}`, 0, 400, false},
	{"POST", "/join", "", "application/json", `{"member":{"id":{"nested":[1,2,{"x":null}]}}}`, 0, 400, false},
	{"POST", "/join", "", "text/plain", `{"member":{"id":"n4"}}`, 0, 415, false},
	{"POST", "/join", "", "", `{"member":{"id":"n4"}}`, 0, 415, false},
	{"POST", "/join", "", rpc.ContentType, "\x0a\x04\x0a\x02n4", 0, 200, false},
	{"POST", "/join", "", rpc.ContentType, "\xff\xff", 0, 400, false},
	{"GET", "/join", "", "", "", 0, 405, true},
	{"POST", "/leave", "", "", "", 0, 200, false},
	{"POST", "/leave", "", "", "{}", 0, 200, false},
	{"POST", "/leave", "", "", "{ }", 0, 400, false},
	{"POST", "/leave", "", "", "", fzFailing, 503, false},
	{"GET", "/leave", "", "", "", 0, 405, true},
	{"POST", "/rebalance", "", "", "", 0, 200, false},
	{"POST", "/rebalance", "", "", "", fzFailing, 500, false},
	{"POST", "/rebalance", "", "application/json", "[]", 0, 400, false},
	{"POST", "/rebalance", "dry_run=true", "", "", 0, 200, false},
	{"POST", "/rebalance", "dry_run=false", "", "", 0, 200, false},
	{"POST", "/rebalance", "dry_run=true", "", "{}", 0, 200, false},
	{"POST", "/rebalance", "dry_run=true", "", "", fzFailing, 500, false},
	{"POST", "/rebalance", "dry_run=yes", "", "", 0, 400, false},
	{"POST", "/rebalance", "dry_run=", "", "", 0, 200, false},
	{"POST", "/rebalance", "dry_run=true", "application/json", "[]", 0, 400, false},
	{"GET", "/rebalance", "dry_run=true", "", "", 0, 405, true},
	{"POST", "/leadership/transfer", "", "", "", 0, 200, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"n2"}`, 0, 200, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"n2"}`, fzRefusing, 503, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"timeout"}`, 0, 504, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"invalid_target"}`, 0, 400, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"unavailable"}`, 0, 503, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"weird"}`, 0, 500, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"n2"}x`, 0, 400, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"x":1}`, 0, 400, false},
	{"POST", "/leadership/transfer", "", "application/json", `{"target_id":"` + strings.Repeat("a", 257) + `"}`, 0, 400, false},
	{"POST", rpc.PathPing, "", "", "", 0, 200, false},
	{"POST", rpc.PathPing, "", "application/json", "", 0, 200, false},
	{"POST", rpc.PathPropose, "", rpc.ContentType, "", 0, 200, false},
	{"POST", rpc.PathPropose, "", "application/json", `{"command":{"noop":{}}}`, 0, 200, false},
	{"POST", rpc.PathPropose, "", "application/json", `{"command":{"noop":{}}}`, fzRefusing, 200, false},
	{"POST", rpc.PathPropose, "", "application/json", `{"command":"x"}`, 0, 400, false},
	{"POST", rpc.PathRebalance, "", "application/json", `{"trigger":"manual"}`, 0, 200, false},
	{"POST", rpc.PathTransferLeadership, "", "application/json", `{"target_id":"n2"}`, 0, 200, false},
	{"POST", rpc.PathJoin, "", "application/json", `{}`, 0, 200, false},
	{"POST", rpc.PathJoin, "", "application/json", `{}`, fzRefusing, 200, false},
	{"POST", rpc.PathJoin, "", rpc.ContentType, "\x0a", 0, 400, false},
	{"GET", rpc.PathPing, "", "", "", 0, 405, true},
	{"GET", "/nope", "", "", "", 0, 404, true},
	{"GET", "/", "", "", "", 0, 302, true},
	{"GET", "/ui/", "", "", "", 0, 200, true},
	{"GET", "/ui/app.js", "", "", "", 0, 200, true},
	{"GET", "/ui/nope.js", "", "", "", 0, 404, true},
	{"POST", "/ui/", "", "", "", 0, 405, true},
	{"GET", "/%E2%98%83", "", "", "", 0, 404, true},
	{"GET", "/health/", "", "", "", 0, 404, true},
	{"GET", "//health", "", "", "", 0, 400, true},
	{"GET", "/nodes/../health", "", "", "", 0, 400, true},
	{"POST", "/./leave", "", "", "", 0, 400, true},
}

func TestGatewayRequestsSeeds(t *testing.T) {
	fx := fzGetFixture(t)
	for _, c := range fzGatewayCases {
		target, ok := fzTarget(c.path, c.query)
		if !ok {
			t.Fatalf("bad case %s %q %q", c.method, c.path, c.query)
		}
		r := fzRequest{method: c.method, target: target, contentType: c.contentType, body: []byte(c.body), auth: "Bearer " + fzToken, mode: c.mode}
		rec, _ := fzServe(t, fx, r)
		if rec.Code != c.want {
			t.Errorf("%s %s (mode %06b) = %d, want %d; body %.300q", c.method, target, c.mode, rec.Code, c.want, rec.Body.String())
		}
		r.auth = ""
		rec, _ = fzServe(t, fx, r)
		want := c.want
		if !c.public {
			want = http.StatusUnauthorized
		}
		if rec.Code != want {
			t.Errorf("%s %s without token = %d, want %d; body %.300q", c.method, target, rec.Code, want, rec.Body.String())
		}
	}
}

// A dry run answers the backend's plan and makes no mutating call; a bad
// dry_run value is a 400 before any call.
func TestGatewayRebalanceDryRun(t *testing.T) {
	fx := fzGetFixture(t)
	rec, b := fzServe(t, fx, fzRequest{method: "POST", target: "/rebalance?dry_run=true", auth: "Bearer " + fzToken})
	if rec.Code != http.StatusOK || len(b.mutating) != 0 {
		t.Fatalf("dry run = %d, calls %v; body %s", rec.Code, b.mutating, rec.Body)
	}
	var plan client.RebalancePlan
	if err := json.Unmarshal(rec.Body.Bytes(), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Moves != 1 || plan.PrimaryChanges != 1 || len(plan.Partitions) != 1 || plan.Partitions[0].PartitionID != "partition-3" ||
		!slices.Equal(plan.Partitions[0].Add, []string{"n3"}) || !slices.Equal(plan.Partitions[0].Release, []string{"n1"}) {
		t.Fatalf("plan %+v", plan)
	}
	rec, b = fzServe(t, fx, fzRequest{method: "POST", target: "/rebalance?dry_run=1", auth: "Bearer " + fzToken})
	if rec.Code != http.StatusBadRequest || len(b.mutating) != 0 || !strings.Contains(rec.Body.String(), "dry_run") {
		t.Fatalf("dry_run=1 = %d, calls %v; body %s", rec.Code, b.mutating, rec.Body)
	}
	rec, b = fzServe(t, fx, fzRequest{method: "POST", target: "/rebalance?dry_run=false", auth: "Bearer " + fzToken})
	if rec.Code != http.StatusOK || !slices.Equal(b.mutating, []string{"RebalanceNow"}) {
		t.Fatalf("dry_run=false = %d, calls %v", rec.Code, b.mutating)
	}
}

// Every partition of /partitions and /cluster lists its owners, primary
// first, each with its hand-off state.
func TestGatewayPartitionOwners(t *testing.T) {
	fx := fzGetFixture(t)
	rec, _ := fzServe(t, fx, fzRequest{method: "GET", target: "/partitions"})
	var page client.PartitionsPage
	if err := json.Unmarshal(rec.Body.Bytes(), &page); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("/partitions = %d, %v", rec.Code, err)
	}
	rec, _ = fzServe(t, fx, fzRequest{method: "GET", target: "/cluster"})
	var cr client.ClusterResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &cr); rec.Code != http.StatusOK || err != nil || cr.Cluster == nil || cr.Cluster.PartitionMap == nil {
		t.Fatalf("/cluster = %d, %v: %.300s", rec.Code, err, rec.Body)
	}
	c := cr.Cluster
	if len(page.Partitions) != 8 || len(c.PartitionMap.Partitions) != 8 {
		t.Fatalf("%d partitions in /partitions, %d in /cluster", len(page.Partitions), len(c.PartitionMap.Partitions))
	}
	for _, p := range page.Partitions {
		if len(p.Owners) != 1+len(p.ReplicaNodes) || p.Owners[0].ID != p.PrimaryNode {
			t.Fatalf("%s: owners %+v, primary %q, replicas %v", p.ID, p.Owners, p.PrimaryNode, p.ReplicaNodes)
		}
		for i, o := range p.Owners {
			if o.State != "ready" && o.State != "syncing" {
				t.Fatalf("%s: owner %+v", p.ID, o)
			}
			if i > 0 && o.ID != p.ReplicaNodes[i-1] {
				t.Fatalf("%s: owners %+v, replicas %v", p.ID, p.Owners, p.ReplicaNodes)
			}
		}
		if q := c.PartitionMap.Partitions[p.ID]; q == nil || !slices.Equal(q.Owners, p.Owners) {
			t.Fatalf("%s: /cluster owners %+v, /partitions %+v", p.ID, q, p.Owners)
		}
	}
}

func TestGatewayEventStream(t *testing.T) {
	fx := fzGetFixture(t)
	if floor, last := eventlog.FormatSeq(fx.events.Floor()), eventlog.FormatSeq(fx.events.Last()); floor != "5.2" || last != "5.16" {
		t.Fatalf("the fixture's log holds (%s, %s], the seeds expect (5.2, 5.16]", floor, last)
	}
	for _, c := range []struct {
		query    string
		has, not []string
	}{
		{"since=5.2", []string{"\nid: 5.3\n", "\nid: 5.16\n"}, []string{"id: 5.2\n"}},
		{"since=5.15", []string{"\nid: 5.16\n"}, []string{"id: 5.15\n"}},
		{"since=5.2&kinds=partition_change", []string{"event: partition_change\n"}, []string{"event: rebalance_complete\n"}},
		{"", []string{"after 5.16\n"}, []string{"id: "}},
	} {
		rec, _ := fzServe(t, fx, fzRequest{method: "GET", target: "/events?" + c.query})
		body := rec.Body.String()
		for _, s := range c.has {
			if !strings.Contains(body, s) {
				t.Errorf("GET /events?%s: no %q in %.500q", c.query, s, body)
			}
		}
		for _, s := range c.not {
			if strings.Contains(body, s) {
				t.Errorf("GET /events?%s: %q in %.500q", c.query, s, body)
			}
		}
	}
}

func TestGatewayBodyLimits(t *testing.T) {
	fx := fzGetFixture(t)
	auth := "Bearer " + fzToken
	big := bytes.Repeat([]byte(" "), maxBody+1)
	for _, r := range []fzRequest{
		{method: "POST", target: "/leave", body: big},
		{method: "POST", target: "/leadership/transfer", contentType: "application/json", body: big},
		{method: "POST", target: "/join", contentType: "application/json", body: big},
		{method: "DELETE", target: "/nodes/n2", body: big},
		{method: "POST", target: rpc.PathPropose, contentType: rpc.ContentType, body: bytes.Repeat([]byte{0}, rpc.MaxBody+1)},
	} {
		r.auth = auth
		if rec, _ := fzServe(t, fx, r); rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s with %d bytes = %d, want 413", r.method, r.target, len(r.body), rec.Code)
		}
	}
	// The node-to-node routes allow more than maxBody.
	r := fzRequest{method: "POST", target: rpc.PathPropose, contentType: "application/json", auth: auth,
		body: append(append([]byte(`{"command":{"set_custom_data":{"key":"k","value":"`), bytes.Repeat([]byte("A"), maxBody)...), `"}}}`...)}
	if rec, _ := fzServe(t, fx, r); rec.Code != http.StatusOK {
		t.Errorf("POST %s with %d bytes = %d, want 200; body %.300q", r.target, len(r.body), rec.Code, rec.Body.String())
	}
}

// fzBadAuth are Authorization headers that must not authenticate.
// "Bearer rtok" is a valid read token: it must not change anything either.
// (The scheme is case-insensitive and may be followed by several spaces,
// RFC 7235: "bearer tok" and "Bearer  tok" authenticate.)
var fzBadAuth = []string{"", "Bearer", "Bearer ", "Bearer TOK", "Basic tok", "tok", "Bearer tok\x00", "Bearer tokk", "Bearer to", "Bearer rtok", "Bearertok"}

func FuzzGatewayRequests(f *testing.F) {
	for _, c := range fzGatewayCases {
		f.Add(c.method, c.path, c.query, c.contentType, []byte(c.body))
	}
	fx := fzGetFixture(f)
	f.Fuzz(func(t *testing.T, method, p, query, contentType string, body []byte) {
		method = fzPickMethod(method)
		target, ok := fzTarget(p, query)
		if !ok {
			return
		}
		// The fake's behaviour and the wrong token are picked from a hash of
		// the input, so every input is served deterministically.
		h := fnv.New64a()
		for _, s := range []string{method, target, contentType} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		h.Write(body)
		sum := h.Sum64()
		r := fzRequest{method: method, target: target, contentType: contentType, body: body, mode: fzMode(sum % fzModeCount)}

		// Without the right token: nothing may change.
		r.auth = fzBadAuth[(sum>>8)%uint64(len(fzBadAuth))]
		if rec, _ := fzServe(t, fx, r); rec == nil {
			return
		}
		// With it: the same invariants, deeper in the handlers.
		r.auth = "Bearer " + fzToken
		fzServe(t, fx, r)
	})
}
