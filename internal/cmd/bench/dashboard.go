package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clusterkit/clusterkit/internal/chromium"
)

// The dashboard's responsiveness, in headless Chromium, on a large cluster
// (50 members, 1,024 partitions) against a small one (3 members, 64
// partitions) in the same run: the time to the first complete page, a
// scroll step of the partition grid to its painted frame, and a key lookup
// to its filtered grid.

// dashboardSample is what one page load measures, in milliseconds.
type dashboardSample struct {
	Render    float64   `json:"render"`
	Scroll    []float64 `json:"scroll"`
	Locate    float64   `json:"locate"`
	GridNodes int       `json:"grid_nodes"`
}

// waitJS resolves, once cond holds (checked every frame), with the
// milliseconds since the navigation started; it rejects after 60 s.
const waitJS = `new Promise((res, rej) => {
	const t0 = performance.now();
	const check = () => {
		let ok = false;
		try { ok = Boolean(%s); } catch (e) {}
		if (ok) res(performance.now());
		else if (performance.now() - t0 > 60000) rej(new Error('timed out waiting for: %s'));
		else requestAnimationFrame(check);
	};
	check();
})`

// measureJS scrolls the grid top to bottom in half-screen steps, timing
// each step to its second painted frame, then looks a key up and times
// the filtered grid.
const measureJS = `(async () => {
	const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
	const box = document.getElementById('partitions');
	const scroll = [];
	box.scrollTop = 0;
	await frame();
	for (let i = 0; i < 400 && box.scrollTop + box.clientHeight < box.scrollHeight - 1; i++) {
		const t = performance.now();
		box.scrollTop += Math.max(20, Math.floor(box.clientHeight / 2));
		await frame();
		scroll.push(performance.now() - t);
	}
	const gridNodes = box.querySelectorAll('*').length;
	box.scrollTop = 0;
	const count = document.getElementById('partitions-count');
	document.getElementById('locate-input').value = 'user:42';
	const t = performance.now();
	document.getElementById('locate-form').requestSubmit();
	while (!count.textContent.trim().startsWith('1 of ')) {
		if (performance.now() - t > 30000) throw new Error('locate: no filtered grid after 30 s');
		await new Promise(r => requestAnimationFrame(r));
	}
	const locate = performance.now() - t;
	document.getElementById('locate-clear').click();
	return {scroll, locate, grid_nodes: gridNodes};
})()`

// dashboardOnce starts a cluster of members nodes with partitions
// partitions and loads the dashboard trials times.
func dashboardOnce(browser context.Context, members, partitions, trials int) ([]dashboardSample, error) {
	c, err := startCluster(members, settings{tuned: true, partitions: partitions})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	url := "http://" + c.nodes[0].addr + "/ui/"
	ready := fmt.Sprintf(`document.querySelectorAll('#members tbody tr[data-node-id]').length === %d && document.getElementById('partitions-count').textContent.trim() === '%d of %d partitions' && document.getElementById('stream-status').textContent.trim() === 'live'`, members, partitions, partitions)
	var out []dashboardSample
	for range trials {
		ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
		var s dashboardSample
		err := chromedp.Do(ctx, chromedp.Navigate(url))
		if err == nil {
			s.Render, err = chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf(waitJS, ready, "a complete page"), chromedp.EvalAwaitPromise))
		}
		var raw []byte
		if err == nil {
			raw, err = chromedp.Run(ctx, chromedp.Evaluate[[]byte](measureJS, chromedp.EvalAwaitPromise))
		}
		cancel()
		if err == nil {
			var m dashboardSample
			if err = json.Unmarshal(raw, &m); err == nil {
				s.Scroll, s.Locate, s.GridNodes = m.Scroll, m.Locate, m.GridNodes
			}
		}
		if err != nil {
			return nil, fmt.Errorf("dashboard with %d members, %d partitions: %w", members, partitions, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func runDashboard(cfg *config) (*section, error) {
	large, partitions := 50, 1024
	trials := 5
	if cfg.quick {
		large, partitions, trials = 10, 256, 2
	}
	s := &section{
		title: "Dashboard responsiveness in headless Chromium ([ops])",
		intro: fmt.Sprintf(`The dashboard of node-1 (`+"`/ui/`"+`) in headless Chromium (Debian's package, driven with chromedp), on an
in-process cluster of %d members and %d partitions; the baseline is the same page on 3 members and 64 partitions, in
the same run. *First complete page*: from the navigation's start to every member row, the whole grid counted and the
event stream live. *Scroll step*: the partition grid (virtualized: only the rows on screen exist) scrolled by half a
screen, to its second painted frame, top to bottom. *Key lookup*: `+"`user:42`"+` submitted to the filtered grid
(`+"`GET /locate`"+` included). %d page loads each.`, large, partitions, trials),
	}
	path := chromium.Path()
	if path == "" {
		s.notes = append(s.notes, "SKIPPED: no Chromium on this machine (apt-get install chromium).")
		return s, nil
	}
	dir, err := os.MkdirTemp("", "clusterkit-bench-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromium.Options(path, dir+"/profile", dir, 1400, 1000)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		return nil, fmt.Errorf("start Chromium %s: %w", path, err)
	}
	base, err := dashboardOnce(browser, 3, 64, trials)
	if err != nil {
		return nil, err
	}
	big, err := dashboardOnce(browser, large, partitions, trials)
	if err != nil {
		return nil, err
	}
	pick := func(ss []dashboardSample, f func(dashboardSample) []float64) []float64 {
		var out []float64
		for _, x := range ss {
			out = append(out, f(x)...)
		}
		return out
	}
	render := func(x dashboardSample) []float64 { return []float64{x.Render} }
	scroll := func(x dashboardSample) []float64 { return x.Scroll }
	locate := func(x dashboardSample) []float64 { return []float64{x.Locate} }
	for _, m := range []struct {
		name  string
		f     func(dashboardSample) []float64
		limit float64
		text  string
	}{
		{fmt.Sprintf("first complete page, %d members × %d partitions", large, partitions), render, 2000, "≤ 2 s"},
		{"a scroll step of the grid to its painted frame", scroll, 100, "p99 ≤ 100 ms"},
		{"a key lookup to the filtered grid", locate, 200, "≤ 200 ms"},
	} {
		xs, bs := pick(big, m.f), pick(base, m.f)
		r := row{name: m.name, median: fmtMs(median(xs)), p99: fmtMs(p99(xs)), trials: fmt.Sprint(len(xs)),
			baseline: fmtMs(median(bs)), ratio: fmtRatio(median(xs)/median(bs)) + " 3 × 64"}
		r.target, r.met = targetLE(p99(xs), m.limit, m.text, "[ops]")
		s.rows = append(s.rows, r)
	}
	s.notes = append(s.notes, fmt.Sprintf("Elements in the grid while scrolling: %d with %d partitions, %d with 64 (only the visible rows are built).",
		big[0].GridNodes, partitions, base[0].GridNodes))
	return s, nil
}
