package sim

import (
	"encoding/json"
	"net/http"
)

// ProbeHandler serves GET|POST /probe/{service}/{region}, an active probe of a region as the
// world sees it now: 200 {"ok":true} when up and not overloaded; 503 in an outage or overloaded;
// under an errors fault 500 with the fault's probability. Every answer carries the region's
// current median latency in X-Sim-Latency (a Go duration; nothing sleeps). Unknown names: 404.
func (w *World) ProbeHandler() http.Handler {
	mux := http.NewServeMux()
	h := func(rw http.ResponseWriter, req *http.Request) {
		w.mu.Lock()
		r := w.region(req.PathValue("service"), req.PathValue("region"))
		var v RegionView
		var errFault float64
		if r != nil {
			v = w.view(r)
			errFault = r.errFault
		}
		w.mu.Unlock()
		if r == nil {
			writeProbe(rw, http.StatusNotFound, "unknown service or region")
			return
		}
		rw.Header().Set("X-Sim-Latency", v.Latency.String())
		switch {
		case v.Down:
			writeProbe(rw, http.StatusServiceUnavailable, "outage")
		case v.Overloaded:
			writeProbe(rw, http.StatusServiceUnavailable, "overloaded")
		case errFault > 0 && w.fs.draw() < errFault:
			writeProbe(rw, http.StatusInternalServerError, "error")
		default:
			writeProbe(rw, http.StatusOK, "")
		}
	}
	mux.HandleFunc("GET /probe/{service}/{region}", h)
	mux.HandleFunc("POST /probe/{service}/{region}", h)
	return mux
}

func (fs *faultState) draw() float64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.rng.Float64()
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
