// Package statuspage_test checks the status page (issue 14, item 4) as people see it: the
// unchanged daemon on the simulated cloud (official clients against pkg/sim, virtual clock)
// through a regional outage and its failover, the page served by pkg/server on loopback and
// rendered by headless Chromium at desktop and phone widths, during and after the failover.
package statuspage_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

const (
	faultAt = 30 * time.Minute
	service = "fraud-scorer"
	primary = "us-central1"
	target  = "us-east1"
)

// viewports: a desktop browser and a phone (CSS pixels, device scale 1).
var viewports = []struct {
	name          string
	width, height int
	mobile        bool
}{
	{"desktop", 1280, 900, false},
	{"phone", 375, 812, true},
}

// TestStatusPageDuringAndAfterFailover runs the demo's outage (the primary fails for eight
// minutes, as in `drwatchd run --sim`, but half an hour in, so that the sparklines have a
// history to show the shift against) and looks at the page twice: while the
// failover shifts traffic, and after it completed, once the new active region's metric window
// shows its scale-up spike.
//
// What is checked, on the HTML: the traffic-share sparkline of the target rises (and the
// primary's falls), the state badge, the plan's progress bar during the shift, and that the
// active region reads what the machine reads after the shift (not the spike its window still
// holds). In Chromium, at 1280 and 375 CSS pixels: the screenshot is produced at that width,
// the document is no wider than its viewport (nothing makes the whole page scroll sideways;
// measured from the layout, see cdp_test.go), no element sticks out of it, and no timestamp
// wraps. DRWATCHD_TEST_ARTIFACTS=dir keeps the PNGs and HTML for a human to look at.
func TestStatusPageDuringAndAfterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulated cloud and headless Chromium: skipped in -short")
	}
	lookChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env, err := simrun.Start(ctx, simrun.DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: faultAt, Target: primary, Kind: sim.KindOutage, Value: 1, Duration: 8 * time.Minute}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	reg := prometheus.NewRegistry()
	inst, err := env.NewDaemon(ctx, simrun.DaemonOptions{Log: zaptest.NewLogger(t), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	d := inst.Daemon
	srv := httptest.NewServer(server.Public(d, reg, d.Ready, zaptest.NewLogger(t)))
	defer srv.Close()
	b := startBrowser(t)

	state := func() failover.State {
		st, _ := d.State(service)
		return st
	}
	// During: the failover has moved part of the traffic and is still in progress.
	during := func() bool {
		st := state()
		if st.State != failover.FailingOver || st.Plan == nil {
			return false
		}
		s := d.Status().Services[0]
		return s.Weights != nil && s.Weights[target] > 0 && s.Weights[target] < 100
	}
	if ok, err := env.RunUntil(ctx, faultAt+10*time.Minute, during, d); err != nil || !ok {
		t.Fatalf("no failover in progress with part of the traffic moved within 10 simulated minutes of the outage (state %s, err %v)", state().State, err)
	}
	t.Logf("during: at +%s, %s, split %v", env.Elapsed(), state().State, d.Status().Services[0].Weights)
	html := look(t, ctx, b, srv.URL, "during")
	if !regexp.MustCompile(`class="badge warn" id="state-` + service + `">failing-over<`).Match(html) {
		t.Errorf("during: no amber failing-over badge")
	}
	if !bytes.Contains(html, []byte(`id="plan-`+service+`"`)) || !bytes.Contains(html, []byte(`class="seg now"`)) {
		t.Errorf("during: no plan progress bar with its step in progress")
	}
	shareDuring := sharePoints(t, html, target)
	if last := shareDuring[len(shareDuring)-1]; last <= 0 || last >= 100 {
		t.Errorf("during: the target's newest share point is %v%%, want part of the traffic", last)
	}

	// After: failed over; wait (at most the post-shift grace) until the active region's own
	// metric window shows the shift's spike, which the page must not show as its health now.
	if ok, err := env.RunUntil(ctx, 15*time.Minute, func() bool { return state().State == failover.FailedOver }, d); err != nil || !ok {
		t.Fatalf("not failed over within 15 simulated minutes: %s (%s)", state().State, state().Reason)
	}
	spike := func() bool {
		for _, r := range d.Status().Services[0].Regions {
			if r.Name == state().Active {
				return !r.ShiftGraceUntil.IsZero() && r.Health.Verdict != health.Healthy
			}
		}
		return false
	}
	sawSpike, _ := env.RunUntil(ctx, 10*time.Minute, spike, d)
	st := d.Status().Services[0]
	t.Logf("after: at +%s, %s, active %s, split %v; the active's window holds the spike: %v", env.Elapsed(), st.State.State, st.State.Active, st.Weights, sawSpike)
	html = look(t, ctx, b, srv.URL, "after")
	if !regexp.MustCompile(`class="badge warn" id="state-` + service + `">failed-over<`).Match(html) {
		t.Errorf("after: failed-over is not shown as an amber warning")
	}
	shareAfter := sharePoints(t, html, target)
	if first, last := shareAfter[0], shareAfter[len(shareAfter)-1]; first != 0 || last != 100 || len(shareAfter) < 5 {
		t.Errorf("after: the target's share sparkline goes %v%% → %v%% over %d points, want 0%% → 100%%: %v", first, last, len(shareAfter), shareAfter)
	}
	if p := sharePoints(t, html, primary); p[0] != 100 || p[len(p)-1] != 0 {
		t.Errorf("after: the primary's share sparkline goes %v%% → %v%%, want 100%% → 0%%", p[0], p[len(p)-1])
	}
	if sawSpike {
		for _, r := range st.Regions {
			if r.Name != st.State.Active {
				continue
			}
			badge := regexp.MustCompile(`class="badge (\w+)" id="verdict-` + service + `-` + r.Name + `">([^<]+)<`).FindSubmatch(html)
			if badge == nil || string(badge[1]) != "ok" {
				t.Errorf("after: the active %s (evaluator: %s, %s) is shown as %q; within the post-shift grace with no fresh signal failing it must read what it is now (ok)",
					r.Name, r.Health.Verdict, r.Health.Reason, badge)
			} else {
				t.Logf("after: the active %s reads %q (evaluator: %s: %s)", r.Name, badge[2], r.Health.Verdict, r.Health.Reason)
			}
		}
	} else {
		t.Logf("NOTE: the active region's window never showed a spike in this run; the grace rule is covered by TestRegionVerdictColours")
	}
}

// look fetches the page's HTML and renders it at every viewport, checking the layout.
func look(t *testing.T, ctx context.Context, b *browser, base, moment string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: HTTP %d, %v", resp.StatusCode, err)
	}
	if bytes.Contains(html, []byte("<script")) {
		t.Errorf("%s: the page carries a script", moment)
	}
	keep := os.Getenv("DRWATCHD_TEST_ARTIFACTS")
	for _, vp := range viewports {
		s, err := b.render(ctx, base+"/", vp.width, vp.height, vp.mobile)
		if err != nil {
			t.Fatalf("%s at %s: %v", moment, vp.name, err)
		}
		img, err := png.Decode(bytes.NewReader(s.PNG))
		if err != nil {
			t.Fatalf("%s at %s: screenshot: %v", moment, vp.name, err)
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		t.Logf("%s at %s: screenshot %dx%d (%d bytes); document %d px wide in a %d px viewport", moment, vp.name, w, h, len(s.PNG), s.ScrollWidth, s.ClientWidth)
		if w != vp.width || h < 300 || len(s.PNG) < 10_000 {
			t.Errorf("%s at %s: screenshot %dx%d, %d bytes; want %d wide", moment, vp.name, w, h, len(s.PNG), vp.width)
		}
		if s.ClientWidth != vp.width || s.ScrollWidth > s.ClientWidth {
			t.Errorf("%s at %s: the document is %d px wide in a %d px viewport: the whole page scrolls sideways", moment, vp.name, s.ScrollWidth, s.ClientWidth)
		}
		if len(s.Overflowing) > 0 {
			t.Errorf("%s at %s: elements stick out of the viewport: %q", moment, vp.name, s.Overflowing)
		}
		if len(s.Wrapped) > 0 {
			t.Errorf("%s at %s: timestamps wrap: %q", moment, vp.name, s.Wrapped)
		}
		if keep != "" {
			if err := os.MkdirAll(keep, 0o755); err == nil {
				_ = os.WriteFile(filepath.Join(keep, fmt.Sprintf("status-%s-%s.png", moment, vp.name)), s.PNG, 0o644)
				_ = os.WriteFile(filepath.Join(keep, fmt.Sprintf("status-%s.html", moment)), html, 0o644)
			}
		}
	}
	return html
}

var (
	svgShareRE = `<svg class="spark share" id="share-` + service + `-%s"[^>]*>(.*?)</svg>`
	pointRE    = regexp.MustCompile(`(?:points="([^"]*)")|(?:cx="([^"]*)" cy="([^"]*)")`)
)

// sharePoints reads a region's traffic-share sparkline back into percentages, oldest first,
// from the SVG's geometry (viewBox height 24, 1.5 of padding: y = 1.5 + (1 - share/100) x 21).
func sharePoints(t *testing.T, html []byte, region string) []float64 {
	t.Helper()
	m := regexp.MustCompile(fmt.Sprintf(svgShareRE, regexp.QuoteMeta(region))).FindSubmatch(html)
	if m == nil {
		t.Fatalf("no share sparkline for %s", region)
	}
	if !bytes.Contains(m[0], []byte(`viewBox="0 0 120.0 24.0"`)) {
		t.Fatalf("share sparkline of %s: unexpected geometry: %s", region, m[0])
	}
	var ys []string
	for _, pm := range pointRE.FindAllSubmatch(m[1], -1) {
		if len(pm[1]) > 0 {
			for _, p := range strings.Fields(string(pm[1])) {
				ys = append(ys, p[strings.IndexByte(p, ',')+1:])
			}
		} else {
			ys = append(ys, string(pm[3]))
		}
	}
	if len(ys) == 0 {
		t.Fatalf("share sparkline of %s has no point: %s", region, m[0])
	}
	out := make([]float64, len(ys))
	for i, y := range ys {
		v, err := strconv.ParseFloat(y, 64)
		if err != nil {
			t.Fatalf("share sparkline of %s: point %q: %v", region, y, err)
		}
		share := (1 - (v-1.5)/21) * 100
		out[i] = float64(int(share + 0.5))
		if share < 0 {
			out[i] = 0
		}
	}
	return out
}
