package server

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/gauges"
)

// MetricsContentType is what /metrics answers, whatever the Accept header: the Prometheus text
// format 0.0.4, which every Prometheus accepts (its scrape_protocols fall back to it, and it
// parses by the Content-Type of the answer). OpenMetrics and protobuf are not written.
const MetricsContentType = string(expfmt.FmtText)

// splitter is a gatherer that knows which of its collectors can write their own families
// (gauges.Registry).
type splitter interface {
	Split() (prometheus.Gatherer, []gauges.Streamer)
}

// Metrics returns the /metrics handler over g. When g is a *gauges.Registry, the families of
// its Streamers (the per-region and per-service families, ~20 series per endpoint) are written
// straight from their records as text, one series at a time, and only the other collectors
// are gathered: a scrape at 10,000 endpoints then never holds its ~200,000 series as
// dto.Metrics at once. Other gatherers are gathered in full and written the same way.
//
// Errors, as promhttp's HTTPErrorOnError: an error gathering the other collectors (before any
// byte is written) answers 500 with the error. A streamed series that cannot be written
// (a label value that is not valid UTF-8, a family split or written twice) is left out of the
// body, since its status line is already sent: the rest of the scrape is served, as with
// ContinueOnError. Both are logged and counted in
// drwatchd_metrics_scrape_errors_total{cause="gathering"}; a write that fails (the scraper
// went away) is logged and counted with cause="encoding". If g is also a prometheus.Registerer
// the counter is registered on it.
func Metrics(g prometheus.Gatherer, log *zap.Logger) http.Handler {
	h := &metricsHandler{g: g, log: log.Named("metrics"), errs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drwatchd_metrics_scrape_errors_total",
		Help: "Problems serving /metrics: gathering (a collector's error, a series left out), encoding (the body could not be written, e.g. the scraper went away).",
	}, []string{"cause"})}
	h.errs.WithLabelValues("gathering")
	h.errs.WithLabelValues("encoding")
	if reg, ok := g.(prometheus.Registerer); ok {
		if err := reg.Register(h.errs); err != nil {
			if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
				if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					h.errs = c
				}
			} else {
				h.log.Error("register the scrape error counter", zap.Error(err))
			}
		}
	}
	return h
}

// maxLoggedProblems is how many refused series a scrape logs one by one (they are all counted).
const maxLoggedProblems = 10

type metricsHandler struct {
	g    prometheus.Gatherer
	log  *zap.Logger
	errs *prometheus.CounterVec
}

// gzipPool keeps the gzip writers (about 800 kB each) between scrapes.
var gzipPool = sync.Pool{New: func() any {
	// BestSpeed: the body is ~22 MB of text at 10,000 endpoints; the default level costs
	// several times the CPU for a few percent less on the wire.
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, streamers := h.g, []gauges.Streamer(nil)
	if s, ok := h.g.(splitter); ok {
		rest, streamers = s.Split()
	}
	mfs, err := rest.Gather()
	if err != nil {
		h.errs.WithLabelValues("gathering").Inc()
		h.log.Error("gather metrics", zap.Error(err))
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", MetricsContentType)
	hdr.Add("Vary", "Accept-Encoding") // not Accept: the format is the same for every Accept
	var out io.Writer = w
	var gz *gzip.Writer
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		hdr.Set("Content-Encoding", "gzip")
		gz = gzipPool.Get().(*gzip.Writer)
		gz.Reset(w)
		out = gz
	}
	tw := gauges.NewTextWriter(out)
	tw.OnProblem(func(p error) {
		h.errs.WithLabelValues("gathering").Inc()
		if tw.Problems() <= maxLoggedProblems {
			h.log.Error("metrics series left out of the scrape", zap.Error(p))
		}
	})
	for i, mf := range mfs {
		tw.WriteFamily(mf)
		mfs[i] = nil // the gathered families go as soon as written
	}
	for _, s := range streamers {
		s.WriteText(tw)
	}
	if n := tw.Problems(); n > maxLoggedProblems {
		h.log.Error("metrics series left out of the scrape, not logged one by one", zap.Int("count", n-maxLoggedProblems))
	}
	err = tw.Flush()
	if gz != nil {
		if cerr := gz.Close(); err == nil {
			err = cerr
		}
		gz.Reset(io.Discard)
		gzipPool.Put(gz)
	}
	if err != nil {
		h.errs.WithLabelValues("encoding").Inc()
		h.log.Warn("write the metrics scrape", zap.String("peer", r.RemoteAddr), zap.Error(err))
	}
}

// acceptsGzip tells whether the Accept-Encoding header values allow gzip: "gzip" or "*" with a
// non-zero quality, unless gzip itself is refused (q=0).
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					} else {
						q = 0 // a malformed quality: not accepted
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				starQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
