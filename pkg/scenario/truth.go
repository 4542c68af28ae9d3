package scenario

import (
	"path"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
)

// What reached the cloud, as the fakes logged it: the ground truth the report counts decisions
// and failovers from, whatever the policy says of itself.

// routeWrite is one accepted write of the service's split: the share per region (0..1).
type routeWrite struct {
	at     time.Time
	shares map[string]float64
}

// episode is one movement of the traffic away from the region it had settled on.
type episode struct {
	start time.Time
	from  string
	// to is where it settled (or, still open at the end, the region with the most traffic).
	to string
	// open: still moving when the run ended.
	open bool
}

// counted reports whether the episode is a failover: the traffic ended on another region, and
// not on the primary (a failback).
func (e episode) counted(primary string) bool { return e.to != e.from && e.to != primary }

// settledShare is the share on one region that makes it the settled region.
const settledShare = 0.99

// episodes walks the writes in order from the initial settled region. An episode opens with
// the first write that takes traffic off the settled region, and closes when a write puts
// settledShare of the traffic on one region: the same one (cancelled or rolled back: no
// failover) or another (a failover, or a failback when it is the primary).
func episodes(writes []routeWrite, initial string, order []string) []episode {
	settled := initial
	var out []episode
	var cur *episode
	for _, w := range writes {
		top, topShare := dominant(w.shares, order)
		if cur == nil {
			if w.shares[settled] >= settledShare {
				continue
			}
			out = append(out, episode{start: w.at, from: settled, open: true})
			cur = &out[len(out)-1]
		}
		cur.to = top
		if topShare >= settledShare {
			cur.open = false
			settled = top
			cur = nil
		}
	}
	return out
}

// dominant is the region with the largest share (the first in order among equals).
func dominant(shares map[string]float64, order []string) (string, float64) {
	best, bs := "", -1.0
	for _, name := range order {
		if s := shares[name]; s > bs {
			best, bs = name, s
		}
	}
	return best, bs
}

// urlMapWrites reads the simulated Compute API's log of accepted writes of the service's URL map
// as shares per region. ok is false when the service is not routed by a URL map.
func (r *recorder) urlMapWrites() ([]routeWrite, bool) {
	ref := r.svc.Shift.URLMap
	if (r.svc.Shift.Router != "" && r.svc.Shift.Router != "urlmap") || ref == "" || r.env.Sim.Compute == nil {
		return nil, false
	}
	parts := strings.Split(ref, "/")
	project, name := parts[1%len(parts)], parts[len(parts)-1]
	byBackend := map[string]string{}
	for _, rg := range r.svc.Regions {
		byBackend[path.Base(rg.BackendService)] = rg.Name
	}
	var out []routeWrite
	for _, w := range r.env.Sim.Compute.Writes() {
		if w.Project != project || w.URLMap != name {
			continue
		}
		var sum float64
		for _, wt := range w.Weights {
			sum += float64(wt)
		}
		rw := routeWrite{at: w.At, shares: map[string]float64{}}
		for be, wt := range w.Weights {
			if region, ok := byBackend[be]; ok && sum > 0 {
				rw.shares[region] += float64(wt) / sum
			}
		}
		out = append(out, rw)
	}
	return out, true
}

// scaleUps are the times the simulated Vertex AI accepted a raise of a standby's minimum
// replicas (a failover's first act when the target is prepared before traffic moves), by region.
func (r *recorder) scaleUps() map[string][]time.Time {
	out := map[string][]time.Time{}
	if r.env.Sim.Vertex == nil {
		return out
	}
	mins := map[string]int32{}
	byEndpoint := map[string]string{}
	for _, rg := range r.svc.Regions {
		byEndpoint[rg.Name+"/"+rg.EndpointID] = rg.Name
		mins[rg.Name] = int32(rg.Replicas.Standby)
		if rg.Role == "primary" {
			mins[rg.Name] = int32(rg.Replicas.Production)
		}
	}
	for _, w := range r.env.Sim.Vertex.Writes() {
		region, ok := byEndpoint[w.Location+"/"+w.EndpointID]
		if !ok || w.Project != r.svc.Project || w.Kind != fakevertex.WriteReplicas {
			continue
		}
		if w.MinReplicas > mins[region] && region != r.svc.Primary().Name {
			out[region] = append(out[region], w.At)
		}
		mins[region] = w.MinReplicas
	}
	return out
}

// countFromWrites sets the report's failovers and decision from what reached the cloud: a
// failover is an episode of URL-map writes that settles elsewhere; the decision is its first
// act after the onset — the first raise of its destination's replicas when that came before
// its first URL-map write, else that write.
func (r *recorder) countFromWrites(rep *Report) bool {
	writes, ok := r.urlMapWrites()
	if !ok {
		return false
	}
	primary := r.svc.Primary().Name
	rep.Failovers, rep.FailoversCompleted = 0, 0
	r.decision = nil
	ups := r.scaleUps()
	for _, e := range episodes(writes, primary, r.regions) {
		if !e.counted(primary) {
			continue
		}
		rep.Failovers++
		if !e.open {
			rep.FailoversCompleted++
		}
		if r.decision != nil || r.onset == nil || e.start.Before(*r.onset) {
			continue
		}
		t := e.start
		for _, at := range ups[e.to] {
			if !at.Before(*r.onset) && at.Before(t) {
				t = at
				break
			}
		}
		r.decision = &t
	}
	return true
}
