package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clusterkit/clusterkit/internal/chromium"
)

// The dashboard in a real headless Chromium (the Debian package), driven
// with chromedp, against real node processes.
//
// CLUSTERKIT_UPDATE_DOCS=1 also writes the screenshots of docs/img (see
// updateDocs).

// newBrowser starts a headless Chromium for the test. Without one the test
// is skipped, loudly, unless CLUSTERKIT_REQUIRE_BROWSER is set (.ci/run sets
// it after installing chromium): then it fails.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := chromium.Path()
	if path == "" {
		if os.Getenv(chromium.EnvRequire) != "" {
			t.Fatal("CLUSTERKIT_REQUIRE_BROWSER is set and no Chromium was found (apt-get install chromium, or set CLUSTERKIT_CHROMIUM)")
		}
		t.Skip("SKIPPED: no Chromium found (apt-get install chromium; .ci/run installs it and requires it)")
	}
	// Chromium's singleton socket goes in TMPDIR, and a Unix socket path
	// is limited to 107 bytes: t.TempDir() under the test's temporary
	// directory can be too long, so a short directory of /tmp it is.
	short, err := os.MkdirTemp("/tmp", "ckc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	opts := chromium.Options(path, t.TempDir(), short, width, height)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now (the first run binds the browser's life to its
	// context: no timeout on it), so that a broken install fails here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return ctx
}

// js evaluates expr in the page (awaiting a promise) into out, bounded.
func js(t *testing.T, ctx context.Context, expr string, out any) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(c, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.80q: %v", expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("evaluate %.80q: decode %s: %v", expr, raw, err)
	}
}

// pageEventually polls the page until cond's JavaScript is true.
func pageEventually(t *testing.T, ctx context.Context, within time.Duration, what, cond string) {
	t.Helper()
	eventually(t, within, what, func() bool {
		var ok bool
		js(t, ctx, "Boolean("+cond+")", &ok)
		return ok
	})
}

// memberRow is one row of the members table as the page shows it.
type memberRow struct {
	ID     string `json:"id"`
	Role   string `json:"role"`
	Health string `json:"health"`
	Zone   string `json:"zone"`
}

const readMembers = `[...document.querySelectorAll('#members tbody tr[data-node-id]')].map(tr => ({
	id: tr.dataset.nodeId,
	role: tr.querySelector('[data-field=role]').textContent.trim(),
	health: tr.querySelector('[data-field=health]').textContent.trim(),
	zone: tr.querySelector('[data-field=zone]').textContent.trim(),
}))`

// readGrid scrolls the virtualized partition grid from top to bottom and
// returns, per partition number, the owner cells: node -> "primary",
// "replica" (":syncing" appended while syncing).
const readGrid = `(async () => {
	const box = document.getElementById('partitions');
	const seen = {};
	box.scrollTop = 0;
	for (let i = 0; i < 500; i++) {
		await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
		for (const row of box.querySelectorAll('[data-partition]')) {
			const cells = {};
			for (const c of row.querySelectorAll('[data-node-id][data-owner]')) {
				cells[c.dataset.nodeId] = c.dataset.owner + (c.dataset.state ? ':' + c.dataset.state : '');
			}
			seen[row.dataset.partition] = cells;
		}
		if (box.scrollTop + box.clientHeight >= box.scrollHeight - 1) break;
		box.scrollTop += Math.max(20, Math.floor(box.clientHeight / 2));
	}
	box.scrollTop = 0;
	return seen;
})()`

// gridOf is the grid the page should show for doc.
func gridOf(doc clusterDoc) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, p := range doc.Cluster.PartitionMap.Partitions {
		n := strings.TrimPrefix(p.ID, "partition-")
		cells := map[string]string{}
		if p.PrimaryNode != "" {
			cells[p.PrimaryNode] = "primary"
		}
		for _, r := range p.ReplicaNodes {
			cells[r] = "replica"
		}
		out[n] = cells
	}
	return out
}

// TestDashboard: a real 3-node cluster, the page in Chromium. The members,
// the leader and the partition grid match GET /cluster; the filters by key
// and by node work; an event shows within a second of its change; the
// token is kept in the tab's session storage and never shown; a drained
// node shows it; a killed node turns suspect, then disappears.
func TestDashboard(t *testing.T) {
	const secret = "dashboard-test-token"
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := []string{"node-1", "node-2", "node-3"}
	args := append(slices.Clone(fastArgs), "-auth-token-file", tokFile, "-auto-rejoin=false",
		// Long enough to see the killed node as suspect before it goes.
		"-health-removal-grace", "6s")
	procs := startProcs(t, 3, args...)
	waitMembers(t, procs, ids...)
	waitVoters(t, procs, ids...)
	ctx := newBrowser(t, 1400, 1000)
	addr := procs[0].addr

	// "/" redirects to the dashboard.
	resp, err := (&http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET / answered %d to %q, want 302 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	navCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(navCtx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 30*time.Second, "three member rows and a live stream",
		`document.querySelectorAll('#members tbody tr[data-node-id]').length === 3 && document.getElementById('stream-status').textContent.trim() === 'live'`)

	// Members and leader as /cluster says.
	var doc clusterDoc
	var rows []memberRow
	eventually(t, 20*time.Second, "the page's members and leader to match GET /cluster", func() bool {
		if doc, err = cluster(addr); err != nil {
			return false
		}
		js(t, ctx, readMembers, &rows)
		var leader string
		js(t, ctx, `document.getElementById('leader').textContent.trim()`, &leader)
		if !strings.HasPrefix(leader, doc.Leader) || len(rows) != len(doc.Cluster.Nodes) {
			return false
		}
		for i, n := range doc.Cluster.Nodes {
			role := "non-voter"
			if n.ID == doc.Leader {
				role = "leader"
			} else if n.Voter {
				role = "voter"
			}
			if rows[i].ID != n.ID || rows[i].Role != role || rows[i].Health != "alive" {
				return false
			}
		}
		return true
	})
	t.Logf("members on the page: %+v, leader %s", rows, doc.Leader)

	// The partition grid: every partition, every owner, as /cluster says.
	var grid map[string]map[string]string
	eventually(t, 20*time.Second, "the grid to match GET /cluster", func() bool {
		if doc, err = cluster(addr); err != nil {
			return false
		}
		js(t, ctx, readGrid, &grid)
		return fmt.Sprint(grid) == fmt.Sprint(gridOf(doc))
	})
	if len(grid) != 64 {
		t.Fatalf("the grid shows %d partitions, want 64", len(grid))
	}
	var count string
	js(t, ctx, `document.getElementById('partitions-count').textContent.trim()`, &count)
	if count != "64 of 64 partitions" {
		t.Fatalf("#partitions-count %q", count)
	}
	if updateDocs {
		shoot(t, ctx, "dashboard.png")
	}

	// Filter by key: one row, the partition the gateway locates.
	loc, err := gateway(addr).Locate(context.Background(), "user:42")
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(navCtx,
		chromedp.SetValue(chromedp.ID("locate-input"), "user:42"),
		chromedp.Click(chromedp.ID("locate-button"))); err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(loc.Number)
	pageEventually(t, ctx, 10*time.Second, "the grid to show only partition "+want,
		`document.getElementById('partitions-count').textContent.trim() === '1 of 64 partitions' && [...document.querySelectorAll('#partitions [data-partition]')].map(r => r.dataset.partition).join() === '`+want+`'`)
	var located string
	js(t, ctx, `document.getElementById('locate-result').textContent`, &located)
	if !strings.Contains(located, want) || !strings.Contains(located, loc.Primary.ID) {
		t.Fatalf("#locate-result %q does not name partition %s and its primary %s", located, want, loc.Primary.ID)
	}
	if err := chromedp.Do(navCtx, chromedp.Click(chromedp.ID("locate-clear"))); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 10*time.Second, "all partitions again", `document.getElementById('partitions-count').textContent.trim() === '64 of 64 partitions'`)

	// Filter by node: the partitions node-2 owns.
	owned := 0
	for _, cells := range gridOf(doc) {
		if cells["node-2"] != "" {
			owned++
		}
	}
	js(t, ctx, `(() => { const s = document.getElementById('node-filter'); s.value = 'node-2'; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, new(bool))
	pageEventually(t, ctx, 10*time.Second, fmt.Sprintf("%d partitions of node-2", owned),
		fmt.Sprintf(`document.getElementById('partitions-count').textContent.trim() === '%d of 64 partitions'`, owned))
	js(t, ctx, `(() => { const s = document.getElementById('node-filter'); s.value = ''; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, new(bool))

	// The token: saved in the tab's session storage, the field emptied, the
	// page never showing it.
	if err := chromedp.Do(navCtx,
		chromedp.SetValue(chromedp.ID("token-input"), secret),
		chromedp.Click(chromedp.ID("token-save"))); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 10*time.Second, "the token to be set", `document.getElementById('auth-state').textContent.trim() === 'token set'`)
	var stored, field, html string
	js(t, ctx, `sessionStorage.getItem('clusterkit.token') || ''`, &stored)
	js(t, ctx, `document.getElementById('token-input').value`, &field)
	js(t, ctx, `document.documentElement.outerHTML`, &html)
	var local int
	js(t, ctx, `localStorage.length`, &local)
	if stored != secret || field != "" || strings.Contains(html, secret) || local != 0 {
		t.Fatalf("token kept %q (want it in sessionStorage), field %q, in the page %v, localStorage entries %d", stored, field, strings.Contains(html, secret), local)
	}

	// An event within a second of its change: a custom-data write (best of
	// three, so that one scheduling hiccup of a busy machine does not
	// decide; the stream pushes, it does not poll).
	best := time.Hour
	for i := range 3 {
		key := fmt.Sprintf("dash-%d", i)
		var n int
		js(t, ctx, `document.querySelectorAll('#events li[data-kind="custom_data_change"]').length`, &n)
		began := time.Now()
		if code, body, err := put(addr, secret, key, "v"); err != nil || code != http.StatusOK {
			t.Fatalf("PUT %s: %d %s %v", key, code, body, err)
		}
		pageEventually(t, ctx, 10*time.Second, "the custom_data_change event on the page",
			fmt.Sprintf(`document.querySelectorAll('#events li[data-kind="custom_data_change"]').length > %d`, n))
		best = min(best, time.Since(began))
	}
	t.Logf("an event reached the page %v after its write was acknowledged (best of 3)", best.Round(time.Millisecond))
	if best > time.Second {
		t.Fatalf("the event took %v to reach the page, want under a second", best)
	}

	// A drain from the page (with the saved token): the row says drained.
	if err := chromedp.Do(navCtx, chromedp.Click(chromedp.CSS(`#members tr[data-node-id="node-3"] button[data-action="drain"]`))); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 20*time.Second, "node-3 drained on the page",
		`document.querySelector('#members tr[data-node-id="node-3"] [data-field=drained]').textContent.trim() === 'drained'`)
	if err := chromedp.Do(navCtx, chromedp.Click(chromedp.CSS(`#members tr[data-node-id="node-3"] button[data-action="undrain"]`))); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 20*time.Second, "node-3 undrained on the page",
		`document.querySelector('#members tr[data-node-id="node-3"] [data-field=drained]').textContent.trim() === ''`)

	// Kill a node: suspect, then gone.
	victim := procs[2]
	if doc.Leader == victim.id {
		victim = procs[1]
	}
	victim.kill9(t)
	sel := `document.querySelector('#members tr[data-node-id="` + victim.id + `"] [data-field=health]')`
	pageEventually(t, ctx, 20*time.Second, victim.id+" suspect on the page", sel+` && `+sel+`.textContent.trim() === 'suspect'`)
	if updateDocs {
		shoot(t, ctx, "dashboard-suspect.png")
	}
	pageEventually(t, ctx, 30*time.Second, victim.id+" gone from the page",
		`!document.querySelector('#members tr[data-node-id="`+victim.id+`"]') && document.querySelectorAll('#members tbody tr[data-node-id]').length === 2`)
	var kinds []string
	js(t, ctx, `[...document.querySelectorAll('#events li[data-kind]')].map(li => li.dataset.kind)`, &kinds)
	if !slices.Contains(kinds, "node_leave") {
		t.Fatalf("no node_leave in the event list: %v", kinds)
	}
}

// shoot writes a screenshot of the page to docs/img/name.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote docs/img/%s", name)
}

// TestDashboardAuthReads: with -auth-reads the page still loads (its files
// are open), says that it needs a token instead of showing an empty
// cluster, and with a read token shows the members and the live stream; a
// change with that read token is refused (403) and the page says so.
func TestDashboardAuthReads(t *testing.T) {
	const admin, reader = "dash-admin-0c5e", "dash-read-91f2"
	tokFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokFile, []byte(admin+"\nread "+reader+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := startProcs(t, 1, append(slices.Clone(fastArgs), "-auth-token-file", tokFile, "-auth-reads")...)
	t.Setenv("AUTH_TOKEN", admin) // for waitMembers' reads (set after the launch: the node reads AUTH_TOKEN too)
	waitMembers(t, procs, "node-1")
	ctx := newBrowser(t, 1200, 900)
	navCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(navCtx, chromedp.Navigate("http://"+procs[0].addr+"/ui/")); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 30*time.Second, "the page to ask for the token",
		`document.getElementById('action-status').dataset.state === 'auth' && document.querySelectorAll('#members tbody tr[data-node-id]').length === 0`)
	if err := chromedp.Do(navCtx,
		chromedp.SetValue(chromedp.ID("token-input"), reader),
		chromedp.Click(chromedp.ID("token-save"))); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 30*time.Second, "the member and a live stream with the read token",
		`document.querySelectorAll('#members tbody tr[data-node-id]').length === 1 && document.getElementById('stream-status').textContent.trim() === 'live'`)
	if err := chromedp.Do(navCtx, chromedp.Click(chromedp.ID("rebalance-pause"))); err != nil {
		t.Fatal(err)
	}
	pageEventually(t, ctx, 20*time.Second, "the page to say the read token may not pause rebalancing",
		`document.getElementById('action-status').dataset.state === 'auth' && document.getElementById('action-status').textContent.includes('403')`)
}
