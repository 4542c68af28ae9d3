package config

import (
	"fmt"
	"time"
)

// MaxConfigBytes bounds a configuration file: a real one is a few kilobytes per service (the
// 10,000-endpoint benchmark's 5,000 services take about 5 MB); reading a file of hundreds of
// megabytes whole (a wrong path, a log file, a hostile mount) would stall the start or a reload
// and balloon memory before a single line is validated.
const MaxConfigBytes = 16 << 20

// durationFloor is the smallest sensible value of a duration setting. Zero and negative values
// are reported by the positive check; these catch values that are above zero but too small for
// the daemon to work with, e.g. loop.interval: 1ns, which makes the loop spin without ever
// finishing an iteration's cloud calls.
type durationFloor struct {
	path  string
	value Duration
	min   time.Duration
	why   string
}

// durationFloors returns every duration below its floor, each with its path.
func durationFloors(c *Config) []*FieldError {
	floors := []durationFloor{
		{"loop.interval", c.Loop.Interval, time.Second, "one iteration makes several cloud calls; Vertex AI samples its metrics every 60s"},
		{"loop.timeout", c.Loop.Timeout, time.Second, "an iteration's cloud calls take hundreds of milliseconds"},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout, time.Second, "in-flight requests need time to finish"},
		{"leader.ttl", c.Leader.TTL, 3 * time.Second, "the lease must survive a slow GCS write"},
		{"leader.renew", c.Leader.Renew, time.Second, "GCS allows about one update per second per object"},
		{"journal.max_age", c.Journal.MaxAge, time.Hour, "an incident's story must outlive the incident"},
	}
	for i, am := range c.Alerting.Alertmanagers {
		floors = append(floors, durationFloor{fmt.Sprintf("alerting.alertmanagers[%d].timeout", i), am.Timeout, 100 * time.Millisecond, "a push needs a network round trip"})
	}
	for i := range c.Services {
		s := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		for j := range s.Regions {
			if pr := s.Regions[j].Probe; pr != nil {
				rp := fmt.Sprintf("%s.regions[%d].probe", p, j)
				floors = append(floors,
					durationFloor{rp + ".interval", pr.Interval, time.Second, "a probe is a real prediction request"},
					durationFloor{rp + ".suspect_interval", pr.SuspectInterval, time.Second, "a probe is a real prediction request"},
					durationFloor{rp + ".timeout", pr.Timeout, 100 * time.Millisecond, "a probe needs a network round trip"})
			}
		}
		floors = append(floors,
			durationFloor{p + ".shift.bake", s.Shift.Bake, 10 * time.Second, "a bake judges the target on its metrics"},
			durationFloor{p + ".shift.propagation", s.Shift.Propagation, time.Second, "a URL map change takes tens of seconds to propagate"},
			durationFloor{p + ".failover.scale_timeout", s.Failover.ScaleTimeout, time.Minute, "Vertex AI replicas take minutes to become ready"},
		)
	}
	var errs []*FieldError
	for _, f := range floors {
		if f.value > 0 && f.value.D() < f.min {
			errs = append(errs, &FieldError{Path: f.path, Msg: fmt.Sprintf("%s is below the minimum %s; want at least %s (%s)",
				f.value, Duration(f.min), Duration(f.min), f.why)})
		}
	}
	return errs
}
