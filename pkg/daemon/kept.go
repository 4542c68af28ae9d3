package daemon

import (
	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// regionObs holds the entries of an observation's Health and RPO maps between iterations, in
// a slice the next iteration overwrites in place. The daemon keeps each service's last
// observation (lastObs: commands are validated against it; /status shows its entries): kept
// as the maps themselves, ~1.8 kB per service (a map of two or three regions is a whole
// 8-slot group: 1.2 kB for the 128-byte RPO readings; the health verdicts, over 128 bytes,
// are held by pointer from a 200-byte group), ~9 MB of the live heap at 10,000 endpoints;
// as entries ~0.9 kB. The maps are rebuilt only where the decision core needs them (a
// command validated or refused at submission). The caller holds d.mu.
type regionObs struct {
	entries []regionEntry
	// Whether the maps were nil (not merely empty): rebuilt as they were.
	healthNil, rpoNil bool
}

type regionEntry struct {
	name              string
	health            health.RegionStatus
	rpo               checkpoint.RegionRPO
	hasHealth, hasRPO bool
}

// set replaces the entries with those of the maps, reusing the slice.
func (r *regionObs) set(hm map[string]health.RegionStatus, rm map[string]checkpoint.RegionRPO) {
	clear(r.entries) // drop the references (reasons, names) of the last iteration's entries
	r.entries = r.entries[:0]
	r.healthNil, r.rpoNil = hm == nil, rm == nil
	for name, hs := range hm {
		e := r.entry(name)
		e.health, e.hasHealth = hs, true
	}
	for name, x := range rm {
		e := r.entry(name)
		e.rpo, e.hasRPO = x, true
	}
}

func (r *regionObs) entry(name string) *regionEntry {
	for i := range r.entries {
		if r.entries[i].name == name {
			return &r.entries[i]
		}
	}
	r.entries = append(r.entries, regionEntry{name: name})
	return &r.entries[len(r.entries)-1]
}

func (r *regionObs) find(name string) *regionEntry {
	for i := range r.entries {
		if r.entries[i].name == name {
			return &r.entries[i]
		}
	}
	return nil
}

// health is the region's entry of the Health map, as an index of it would read.
func (r *regionObs) health(region string) (health.RegionStatus, bool) {
	if e := r.find(region); e != nil && e.hasHealth {
		return e.health, true
	}
	return health.RegionStatus{}, false
}

// rpo is the region's entry of the RPO map, as an index of it would read.
func (r *regionObs) rpo(region string) (checkpoint.RegionRPO, bool) {
	if e := r.find(region); e != nil && e.hasRPO {
		return e.rpo, true
	}
	return checkpoint.RegionRPO{}, false
}

// stale is the RPO entries that are stale, by region, as the alerts read them; nil (no
// allocation) when none is.
func (r *regionObs) stale() map[string]checkpoint.RegionRPO {
	var out map[string]checkpoint.RegionRPO
	for _, e := range r.entries {
		if e.hasRPO && e.rpo.Stale {
			if out == nil {
				out = map[string]checkpoint.RegionRPO{}
			}
			out[e.name] = e.rpo
		}
	}
	return out
}

// maps rebuilds the Health and RPO maps set was given (new maps: the caller may keep them).
func (r *regionObs) maps() (map[string]health.RegionStatus, map[string]checkpoint.RegionRPO) {
	var hm map[string]health.RegionStatus
	var rm map[string]checkpoint.RegionRPO
	if !r.healthNil {
		hm = make(map[string]health.RegionStatus, len(r.entries))
	}
	if !r.rpoNil {
		rm = make(map[string]checkpoint.RegionRPO, len(r.entries))
	}
	for _, e := range r.entries {
		if e.hasHealth && hm != nil {
			hm[e.name] = e.health
		}
		if e.hasRPO && rm != nil {
			rm[e.name] = e.rpo
		}
	}
	return hm, rm
}

// keptObs is a service's last observation as the daemon keeps it: without its commands, its
// Health and RPO maps in regions.
type keptObs struct {
	obs     failover.Observation // Health, RPO and Commands nil
	regions regionObs
}

// keep records obs as the service's last observation, reusing the previous one's storage.
// The caller holds d.mu.
func (d *Daemon) keep(service string, obs failover.Observation) {
	k := d.lastObs[service]
	k.obs = obs
	k.obs.Health, k.obs.RPO, k.obs.Commands = nil, nil, nil
	k.regions.set(obs.Health, obs.RPO)
	d.lastObs[service] = k
}

// kept is the service's last observation (without commands), its maps rebuilt; false before
// the first. The caller holds d.mu.
func (d *Daemon) kept(service string) (failover.Observation, bool) {
	k, ok := d.lastObs[service]
	if !ok {
		return failover.Observation{}, false
	}
	obs := k.obs
	obs.Health, obs.RPO = k.regions.maps()
	return obs, true
}
