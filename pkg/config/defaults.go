package config

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// This file is the one place where defaults live. Parse decodes each YAML mapping onto a value
// that already holds its defaults (Default for the whole file, DefaultService for each
// services[] entry, DefaultRegion for each regions[] entry, DefaultProbe for a probe,
// DefaultAlertmanager for each alertmanagers[] entry), so a key that is absent keeps its default and a key that is
// present, even with a zero value, wins. ApplyDefaults then fills the defaults that derive from
// other fields.

// Default returns the configuration with every top-level default set and no services. The env
// lookup (WithLookupEnv) supplies STATE_DIRECTORY and HOSTNAME.
func Default(opts ...Option) *Config {
	c := defaults(newOptions(opts))
	c.ApplyDefaults(opts...)
	return c
}

// defaults is Default before the derived defaults, which must wait for the decoded values.
func defaults(o options) *Config {
	statePath := "/var/lib/drwatchd/state.json"
	if dir, ok := o.lookupEnv("STATE_DIRECTORY"); ok && dir != "" {
		// systemd may pass several directories separated by ':'; the first is ours.
		dir, _, _ = strings.Cut(dir, ":")
		statePath = filepath.Join(dir, "state.json")
	}
	return &Config{
		Log:    Log{Level: "info", Format: "json"},
		Loop:   Loop{Interval: seconds(10)},
		Server: Server{Listen: ":8080", ShutdownTimeout: seconds(10)},
		Admin:  Admin{Listen: "127.0.0.1:8081"},
		State:  State{Backend: "file", Path: statePath},
		Leader: Leader{
			Object: "drwatchd/leader.json",
			TTL:    seconds(15),
			Renew:  seconds(5),
		},
		Alerting: Alerting{PausedTooLong: Duration(4 * time.Hour)},
		Journal:  Journal{MaxEntries: DefaultJournalEntries, MaxAge: Duration(30 * 24 * time.Hour)},
	}
}

// Journal bounds: the default count per service, and the largest count accepted (every entry
// is written with each state write; 10,000 entries of a three-region service are ~15 MB).
const (
	DefaultJournalEntries = 200
	MaxJournalEntries     = 10000
)

// DefaultService returns a service with every per-service default set.
func DefaultService() Service {
	return Service{
		Health: Health{
			Window:         Duration(5 * time.Minute),
			MinRequests:    100,
			ErrorRatio:     Thresholds{Degraded: 0.01, Unhealthy: 0.05},
			LatencyP99:     LatencyThresholds{Degraded: seconds(1), Unhealthy: seconds(5)},
			UnhealthyAfter: 3,
			HealthyAfter:   3,
			Quorum:         "any",
			NoData:         "unknown",
			Staleness:      Duration(10 * time.Minute),
			Alignment:      seconds(60),
		},
		Failover: Failover{
			Mode:          "auto",
			Cooldown:      Duration(30 * time.Minute),
			MaxFailovers:  2,
			Window:        Duration(24 * time.Hour),
			Failback:      "manual",
			FailbackAfter: Duration(30 * time.Minute),
			RPOGate:       "block",
			ScaleTimeout:  Duration(15 * time.Minute),

			Prewarm:            true,
			PrewarmRelease:     Duration(10 * time.Minute),
			FailbackBackoff:    Duration(15 * time.Minute),
			FailbackBackoffMax: Duration(4 * time.Hour),
		},
		Shift: Shift{
			Router:         "urlmap",
			Steps:          []int{10, 25, 50, 75, 100},
			EmergencySteps: []int{100},
			Bake:           Duration(2 * time.Minute),
			Propagation:    seconds(30),
			Analysis: Analysis{
				MaxErrorRatio:     0.05,
				MaxLatencyP99:     seconds(5),
				MaxBaselineFactor: 2,
				MinRequests:       50,
			},
		},
	}
}

// DefaultRegion returns a region with every per-region default set.
func DefaultRegion() Region {
	return Region{Priority: 100, Replicas: Replicas{Standby: 1}}
}

// DefaultProbe returns a probe with every default set (no URL).
func DefaultProbe() Probe {
	return Probe{Method: "GET", Interval: seconds(5), SuspectInterval: seconds(1), Timeout: seconds(2), ExpectStatus: 200, FailuresToDown: 1}
}

// DefaultAlertmanager returns an alertmanager entry with every default set (no URL).
func DefaultAlertmanager() Alertmanager { return Alertmanager{Timeout: seconds(5)} }

// Probe credentials (probe.auth).
const (
	ProbeAuthNone        = "none"
	ProbeAuthAccessToken = "access-token"
	ProbeAuthIDToken     = "id-token"
)

// DefaultBurnRules are the SRE Workbook's page-level multiwindow, multi-burn-rate rules.
func DefaultBurnRules() []BurnRule {
	return []BurnRule{
		{Long: Duration(time.Hour), Short: Duration(5 * time.Minute), Factor: 14.4},
		{Long: Duration(6 * time.Hour), Short: Duration(30 * time.Minute), Factor: 6},
	}
}

// ApplyDefaults fills the defaults that derive from other fields, where they are zero:
// loop.timeout (= loop.interval; with leader election at most leader.ttl - leader.renew - 1s),
// leader.identity ($HOSTNAME, else os.Hostname),
// replicas.max (= 2 * production), probe.auth (none; access-token with the older google_auth:
// true), probe.audience (auth id-token: the probe URL's scheme and host), burn_rate.rules (DefaultBurnRules), health.lookback
// (= max(window, longest burn-rate long window)) and rpo.source (from what is configured).
// It is idempotent; Parse calls it.
func (c *Config) ApplyDefaults(opts ...Option) {
	o := newOptions(opts)
	if c.Loop.Timeout == 0 {
		c.Loop.Timeout = c.Loop.Interval
		// With leader election the loop's iteration must leave the lease room: a lease renewed
		// at an iteration's start is next renewed up to leader.renew after it ends.
		if room := c.Leader.TTL - c.Leader.Renew - Duration(time.Second); c.Leader.Enabled && room > 0 && c.Loop.Timeout > room {
			c.Loop.Timeout = room
		}
	}
	if c.Leader.Identity == "" {
		if h, ok := o.lookupEnv("HOSTNAME"); ok && h != "" {
			c.Leader.Identity = h
		} else if h, err := os.Hostname(); err == nil {
			c.Leader.Identity = h
		}
	}
	for i := range c.Services {
		s := &c.Services[i]
		for j := range s.Regions {
			r := &s.Regions[j]
			if r.Replicas.Max == 0 {
				r.Replicas.Max = 2 * r.Replicas.Production
			}
			if pr := r.Probe; pr != nil {
				if pr.Auth == "" {
					pr.Auth = ProbeAuthNone
					if pr.GoogleAuth {
						pr.Auth = ProbeAuthAccessToken
					}
				}
				if pr.Auth == ProbeAuthIDToken && pr.Audience == "" {
					if u, err := url.Parse(pr.URL); err == nil && u.Scheme != "" && u.Host != "" {
						pr.Audience = u.Scheme + "://" + u.Host
					}
				}
			}
		}
		if s.Failover.Practice != nil {
			s.Failover.Practice.applyDefaults()
		}
		if s.Health.BurnRate != nil && len(s.Health.BurnRate.Rules) == 0 {
			s.Health.BurnRate.Rules = DefaultBurnRules()
		}
		if s.Health.Lookback == 0 {
			lb := s.Health.Window
			if s.Health.BurnRate != nil {
				for _, r := range s.Health.BurnRate.Rules {
					lb = max(lb, r.Long)
				}
			}
			s.Health.Lookback = lb
		}
		if s.RPO.Source == "" {
			buckets := false
			for _, r := range s.Regions {
				if r.Checkpoint != nil {
					buckets = true
				}
			}
			switch {
			case s.RPO.Metric != "" && buckets:
				s.RPO.Source = "both"
			case s.RPO.Metric != "":
				s.RPO.Source = "metric"
			case buckets:
				s.RPO.Source = "buckets"
			}
		}
	}
}

func seconds(n int) Duration { return Duration(time.Duration(n) * time.Second) }
