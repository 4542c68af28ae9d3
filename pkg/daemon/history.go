package daemon

import (
	"math"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// The status page's sparklines cover the last hour in one-minute buckets. A region costs
// historyBuckets x 3 bytes (a uint8 share, a uint16 error ratio): 180 bytes, 1.8 MB for
// 10,000 endpoints, whatever the loop interval.
const (
	historyBucket  = time.Minute
	historyBuckets = 60

	shareUnknown = math.MaxUint8
	ratioUnknown = math.MaxUint16
	// ratioScale maps an error ratio 0..1 onto 0..ratioScale (resolution 1.5e-5).
	ratioScale = math.MaxUint16 - 1
)

// regionHistory is one region's ring of buckets, indexed by bucket number modulo its length.
type regionHistory struct {
	share [historyBuckets]uint8  // percent; shareUnknown: not read
	ratio [historyBuckets]uint16 // error ratio x ratioScale; ratioUnknown: no data
}

func (r *regionHistory) clear(i int) {
	r.share[i], r.ratio[i] = shareUnknown, ratioUnknown
}

// serviceHistory is a service's rings, all on one time axis.
type serviceHistory struct {
	newest  int64 // bucket number (unix time / historyBucket) of the newest bucket
	regions map[string]*regionHistory
}

func newServiceHistory() *serviceHistory {
	return &serviceHistory{regions: map[string]*regionHistory{}}
}

// record stores the iteration's samples of svc at now: each region's share read back from the
// router (weights) and its evaluated error ratio (regions: the kept observation's). A later sample in the same bucket replaces an earlier
// one; a bucket no sample reached stays a gap.
func (h *serviceHistory) record(svc *config.Service, weights plan.Weights, regions *regionObs, now time.Time) {
	n := bucketOf(now)
	switch {
	case len(h.regions) == 0:
		h.newest = n
	case n > h.newest:
		// Clear the buckets skipped since the newest (at most the whole ring).
		for k := h.newest + 1; k <= n && k <= h.newest+historyBuckets; k++ {
			for _, r := range h.regions {
				r.clear(slot(k))
			}
		}
		h.newest = n
	case n <= h.newest-historyBuckets:
		return // older than the ring (a clock set back by more than an hour)
	}
	for _, rc := range svc.Regions {
		r := h.regions[rc.Name]
		if r == nil {
			r = &regionHistory{}
			for i := range historyBuckets {
				r.clear(i)
			}
			h.regions[rc.Name] = r
		}
		i := slot(n)
		r.share[i] = shareUnknown
		if weights != nil {
			if w, ok := weights[rc.Name]; ok && w >= 0 && w <= 100 {
				r.share[i] = uint8(w)
			}
		}
		r.ratio[i] = ratioUnknown
		if hs, ok := regions.health(rc.Name); ok && hs.Requests > 0 && !math.IsNaN(hs.ErrorRatio) {
			r.ratio[i] = uint16(math.Round(min(max(hs.ErrorRatio, 0), 1) * ratioScale))
		}
	}
	if len(h.regions) > len(svc.Regions) {
		// A region left the configuration (every configured one is in the map by now).
		for name := range h.regions {
			if svc.Region(name) == nil {
				delete(h.regions, name)
			}
		}
	}
}

// export returns the history of svc's regions, in the configuration's order, oldest first.
func (h *serviceHistory) export(svc *config.Service) *api.History {
	if h == nil || len(h.regions) == 0 {
		return nil
	}
	out := &api.History{
		Bucket:         historyBucket,
		ErrorThreshold: svc.Health.ErrorRatio.Unhealthy,
		End:            time.Unix(0, 0).UTC().Add(time.Duration(h.newest+1) * historyBucket),
	}
	for _, rc := range svc.Regions {
		r := h.regions[rc.Name]
		if r == nil {
			continue
		}
		rh := api.RegionHistory{Region: rc.Name, Share: make(api.Series, historyBuckets), ErrorRatio: make(api.Series, historyBuckets)}
		for j := range historyBuckets {
			i := slot(h.newest - historyBuckets + 1 + int64(j))
			rh.Share[j], rh.ErrorRatio[j] = nan32, nan32
			if r.share[i] != shareUnknown {
				rh.Share[j] = float32(r.share[i])
			}
			if r.ratio[i] != ratioUnknown {
				rh.ErrorRatio[j] = float32(float64(r.ratio[i]) / ratioScale)
			}
		}
		out.Regions = append(out.Regions, rh)
	}
	return out
}

var nan32 = float32(math.NaN())

// bucketOf numbers t's bucket: floor(unix time / historyBucket).
func bucketOf(t time.Time) int64 {
	ns := t.UnixNano()
	b := ns / int64(historyBucket)
	if ns%int64(historyBucket) < 0 {
		b--
	}
	return b
}

func slot(bucket int64) int {
	return int(((bucket % historyBuckets) + historyBuckets) % historyBuckets)
}
