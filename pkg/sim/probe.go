package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// ProbeHandler serves GET|POST /probe/{service}/{region}, an active probe of a region as the
// world sees it now: 200 {"ok":true} when up and not overloaded; 503 in an outage or overloaded;
// 500 with the errors fault's probability combined with ProbeFailureRatio (probe noise). During
// a probe blip (a network loss between the daemon and the region, Spec.ProbeBlips) the
// connection is dropped without an answer. Every answer carries the region's current median
// latency in X-Sim-Latency (a Go duration; nothing sleeps). Unknown names: 404. The noise is
// drawn from the seed, the region, the virtual time and the region's probe count, so a run is
// deterministic whatever the goroutines.
func (w *World) ProbeHandler() http.Handler {
	mux := http.NewServeMux()
	h := func(rw http.ResponseWriter, req *http.Request) {
		w.mu.Lock()
		r := w.region(req.PathValue("service"), req.PathValue("region"))
		var v RegionView
		var fail float64
		var blip bool
		var u float64
		if r != nil {
			v = w.view(r)
			fail = 1 - (1-r.errFault)*(1-on(w.spec.ProbeFailureRatio))
			blip = w.blipAt(r, w.now)
			r.probeSeq++
			u = unitHash(uint64(w.spec.Seed), uint64(r.idx), uint64(w.now.UnixNano()), r.probeSeq)
		}
		w.mu.Unlock()
		if r == nil {
			writeProbe(rw, http.StatusNotFound, "unknown service or region")
			return
		}
		if blip {
			dropConnection(rw)
			return
		}
		rw.Header().Set("X-Sim-Latency", v.Latency.String())
		switch {
		case v.Down:
			writeProbe(rw, http.StatusServiceUnavailable, "outage")
		case v.Overloaded:
			writeProbe(rw, http.StatusServiceUnavailable, "overloaded")
		case fail > 0 && u < fail:
			writeProbe(rw, http.StatusInternalServerError, "error")
		default:
			writeProbe(rw, http.StatusOK, "")
		}
	}
	mux.HandleFunc("GET /probe/{service}/{region}", h)
	mux.HandleFunc("POST /probe/{service}/{region}", h)
	return mux
}

// ProbeBlip reports whether a probe blip cuts the daemon off from the region now.
func (w *World) ProbeBlip(serviceName, regionName string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.region(serviceName, regionName)
	return r != nil && w.blipAt(r, w.now)
}

// blipAt reports whether a blip covers t, generating the region's blips (a Poisson process of
// ProbeBlips.PerHour, each ProbeBlips.Length long, from the region's own generator) up to t.
func (w *World) blipAt(r *region, t time.Time) bool {
	rate := on(w.spec.ProbeBlips.PerHour)
	length := w.spec.ProbeBlips.Length
	if rate <= 0 || length <= 0 {
		return false
	}
	for !r.blipNext.After(t) {
		gap := time.Duration(r.blipRng.ExpFloat64() / rate * float64(time.Hour))
		start := r.blipNext.Add(gap)
		r.blips = append(r.blips, interval{kind: "blip", start: start, end: start.Add(length)})
		r.blipNext = start.Add(length)
	}
	// Forget blips that ended long ago; the rest are few.
	n := 0
	for n < len(r.blips) && r.blips[n].end.Before(t.Add(-time.Hour)) {
		n++
	}
	r.blips = r.blips[n:]
	for _, b := range r.blips {
		if b.active(t) {
			return true
		}
	}
	return false
}

// dropConnection closes the connection without an answer, as a network loss looks to the
// client; if the server cannot hijack, it answers 504 instead.
func dropConnection(rw http.ResponseWriter) {
	if hj, ok := rw.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	writeProbe(rw, http.StatusGatewayTimeout, "network loss")
}

// unitHash maps its inputs to [0,1) (splitmix64 over each word).
func unitHash(words ...uint64) float64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, x := range words {
		h ^= x
		h += 0x9e3779b97f4a7c15
		z := h
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		h = z ^ (z >> 31)
	}
	return float64(h>>11) / (1 << 53)
}

func writeProbe(rw http.ResponseWriter, code int, reason string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	body := map[string]any{"ok": code == http.StatusOK}
	if reason != "" {
		body["reason"] = reason
	}
	_ = json.NewEncoder(rw).Encode(body)
}

// ProbeTransport is the network between a prober and the simulated probe server: the server
// answers at once and says in X-Sim-Latency how long the region took; a prober whose request
// deadline is nearer than that gets no answer in time (nothing sleeps on the virtual clock).
// It is how the daemon's probes, and the load balancer policy's health checks, meet a latency
// fault: through their HTTP client, the one thing simulation changes.
type ProbeTransport struct {
	// Base performs the request (nil: http.DefaultTransport).
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t ProbeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	lat, perr := time.ParseDuration(resp.Header.Get("X-Sim-Latency"))
	if dl, ok := req.Context().Deadline(); ok && perr == nil && lat > time.Until(dl) {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("sim: the region answers after %v, past the request's deadline: %w", lat, context.DeadlineExceeded)
	}
	return resp, nil
}

// ProbeClient is an HTTP client for probes of the simulated cloud (ProbeTransport), bounded by
// timeout.
func ProbeClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: ProbeTransport{}, Timeout: timeout}
}
