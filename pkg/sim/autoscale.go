package sim

import (
	"math"
	"time"
)

// autoscaleTolerance: the autoscaler leaves the replica count alone while utilisation is
// within this fraction of its target ("once the real usage deviates from the target by a certain
// percentage, the machine replicas change": AutoscalingMetricSpec; 10 % is the Kubernetes
// horizontal pod autoscaler's default tolerance).
const autoscaleTolerance = 0.1

// autoscale is Vertex AI's autoscaler for every region at t: it wants enough replicas for the
// demand routed to the region at the target utilisation (between min and max). More than are
// allocated are asked for at once (they come after the scale-up delay, or not at all on a
// stock-out); fewer are removed only once utilisation has stayed below target for
// ScaleDownAfter, down to the most wanted during that calm. A region in outage is left alone.
// The calls are made by applyEffects, outside w.mu.
func (w *World) autoscale(t time.Time) {
	target := on(w.spec.AutoscaleTarget)
	if w.fakes.Vertex == nil || target <= 0 || w.spec.ReplicaQPS <= 0 {
		return
	}
	for _, svc := range w.services {
		for j, r := range svc.regions {
			if r.down {
				r.calmSince = time.Time{}
				continue
			}
			have := max(r.allocated, 1)
			demand := w.spec.QPS * svc.eff[j]
			util := demand / (float64(have) * w.spec.ReplicaQPS)
			want := have
			if math.Abs(util/target-1) > autoscaleTolerance {
				want = int32(math.Ceil(demand / (w.spec.ReplicaQPS * target)))
			}
			hi := int32(max(r.spec.Max, int(r.target)))
			want = min(max(want, r.target), hi)
			switch {
			case want > r.allocated:
				r.calmSince = time.Time{}
				w.scaleBuf = append(w.scaleBuf, autoscaleCall{r: r, want: want})
			case want < r.allocated:
				if r.calmSince.IsZero() {
					r.calmSince, r.calmWant = t, want
				}
				r.calmWant = max(r.calmWant, want)
				if t.Sub(r.calmSince) >= w.spec.ScaleDownAfter {
					w.scaleBuf = append(w.scaleBuf, autoscaleCall{r: r, want: r.calmWant})
					r.calmSince = time.Time{}
				}
			default:
				r.calmSince = time.Time{}
			}
		}
	}
}
