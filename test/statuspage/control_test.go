package statuspage_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The layout measurements are only worth something if they catch what they look for: a page
// wider than a phone and a timestamp that wraps are both reported, and a page without them is
// not.
func TestLayoutProbeCatchesOverflowAndWrapping(t *testing.T) {
	if testing.Short() {
		t.Skip("starts headless Chromium: skipped in -short")
	}
	pages := map[string]string{
		"/bad": `<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1">
<body style="margin:0"><div style="width:600px;background:#eee">too wide</div>
<p style="width:120px"><span class="ts">2026-11-29 10:00:00 UTC</span></p></body>`,
		"/good": `<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1">
<body style="margin:0"><div style="max-width:600px;background:#eee">fits</div>
<div style="overflow-x:auto"><div style="width:900px">scrolls inside its own box</div></div>
<p style="width:120px"><span class="ts" style="white-space:nowrap">2026-11-29 10:00:00 UTC</span></p></body>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(pages[r.URL.Path]))
	}))
	defer srv.Close()
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	bad, err := b.render(ctx, srv.URL+"/bad", 375, 700, true)
	if err != nil {
		t.Fatal(err)
	}
	if bad.ScrollWidth <= bad.ClientWidth || len(bad.Overflowing) == 0 || len(bad.Wrapped) != 1 {
		t.Errorf("control page: scrollWidth %d clientWidth %d, overflowing %q, wrapped %q: the probe misses what it must catch",
			bad.ScrollWidth, bad.ClientWidth, bad.Overflowing, bad.Wrapped)
	}
	good, err := b.render(ctx, srv.URL+"/good", 375, 700, true)
	if err != nil {
		t.Fatal(err)
	}
	if good.ScrollWidth != 375 || good.ClientWidth != 375 || len(good.Overflowing) != 0 || len(good.Wrapped) != 0 {
		t.Errorf("good page: scrollWidth %d clientWidth %d, overflowing %q, wrapped %q: want 375/375 and nothing",
			good.ScrollWidth, good.ClientWidth, good.Overflowing, good.Wrapped)
	}
	img, err := png.Decode(bytes.NewReader(good.PNG))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if w := img.Bounds().Dx(); w != 375 {
		t.Errorf("screenshot %d px wide, want 375", w)
	}
}
