package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FieldError is one problem in the configuration, at a field path such as
// services[1].regions[0].role.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

var (
	serviceNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	projectRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	regionRE      = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	numericRE     = regexp.MustCompile(`^[0-9]+$`)
	// A GCP resource name: lowercase letter, then letters, digits, dashes; no trailing dash.
	resName       = `[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?`
	computePrefix = `(?:https://(?:www|compute)\.googleapis\.com/compute/(?:v1|beta|alpha)/)?`
	backendRE     = regexp.MustCompile(`^` + computePrefix + `projects/([^/]+)/global/backendServices/` + resName + `$`)
	urlMapRE      = regexp.MustCompile(`^` + computePrefix + `projects/([^/]+)/global/urlMaps/` + resName + `$`)
	metricTypeRE  = regexp.MustCompile(`^[a-z0-9_.]+\.googleapis\.com/.+`) // custom., external., aiplatform., ...
	bucketRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`)
)

// Validate checks the whole configuration and returns every problem found, each a *FieldError,
// joined with errors.Join; nil if the configuration is valid. It expects defaults applied (as
// Parse does).
func (c *Config) Validate() error {
	fe := c.validate()
	if len(fe) == 0 {
		return nil
	}
	errs := make([]error, len(fe))
	for i, e := range fe {
		errs[i] = e
	}
	return errors.Join(errs...)
}

type validator struct{ errs []*FieldError }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.add(path, "%q is not allowed; want one of: %s", got, strings.Join(allowed, ", "))
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "%s is not positive; want a duration above zero, e.g. \"30s\"", d)
	}
}

func (v *validator) ratio(path string, f float64) {
	if !(f >= 0 && f <= 1) {
		v.add(path, "%v is not a ratio; want a number from 0 to 1 (0.05 is 5%%)", f)
	}
}

func (v *validator) hostPort(path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(path, "%q is not a listen address; want host:port, e.g. \"127.0.0.1:8081\" or \":8080\"", s)
		return
	}
	if strings.ContainsAny(host, " /") {
		v.add(path, "%q has an invalid host %q; want host:port, e.g. \"127.0.0.1:8081\"", s, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "%q has an invalid port %q; want a number from 0 to 65535", s, port)
	}
}

func (v *validator) httpURL(path, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if err == nil && u.User != nil {
			c := *u
			c.User = url.User("xxxxx") // never print credentials
			s = c.String()
		}
		v.add(path, "%q is not an absolute http(s) URL; want e.g. \"https://host:port/path\"", s)
	}
}

func (v *validator) bucket(path, s, what string) {
	switch {
	case s == "":
		v.add(path, "required %s; want a GCS bucket name such as \"my-bucket\"", what)
	case strings.HasPrefix(s, "gs://"):
		v.add(path, "%q is a gs:// URL; want the bare bucket name %q", s, strings.SplitN(strings.TrimPrefix(s, "gs://"), "/", 2)[0])
	case !bucketRE.MatchString(s):
		v.add(path, "%q is not a valid GCS bucket name; want 3-222 characters of a-z, 0-9, '-', '_', '.', starting and ending with a letter or digit", s)
	}
}

func (v *validator) steps(path string, steps []int) {
	if len(steps) == 0 {
		v.add(path, "must list at least one step; want increasing percentages ending at 100, e.g. [10, 25, 50, 100]")
		return
	}
	for i, s := range steps {
		p := fmt.Sprintf("%s[%d]", path, i)
		if s < 1 || s > 100 {
			v.add(p, "%d is not a percentage of traffic; want 1 to 100", s)
			continue
		}
		if i > 0 && s <= steps[i-1] {
			if s == steps[i-1] {
				v.add(p, "%d repeats the step before it; steps must strictly increase", s)
			} else {
				v.add(p, "%d is lower than the step before it (%d); steps must strictly increase", s, steps[i-1])
			}
		}
	}
	if last := steps[len(steps)-1]; last != 100 {
		v.add(path, "the last step is %d; it must be 100 so that the shift completes", last)
	}
}

func (c *Config) validate() []*FieldError {
	v := &validator{}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "console")

	v.positive("loop.interval", c.Loop.Interval)
	v.positive("loop.timeout", c.Loop.Timeout)

	v.hostPort("server.listen", c.Server.Listen)
	v.positive("server.shutdown_timeout", c.Server.ShutdownTimeout)

	v.hostPort("admin.listen", c.Admin.Listen)
	if c.Admin.Enabled && c.Admin.TokenFile == "" {
		v.add("admin.token_file", "required when admin.enabled is true; want the path of a file holding the bearer token")
	}

	v.oneOf("state.backend", c.State.Backend, "file", "gcs")
	switch c.State.Backend {
	case "file":
		if c.State.Path == "" {
			v.add("state.path", "required for state.backend file; want a file path, e.g. /var/lib/drwatchd/state.json")
		}
	case "gcs":
		v.bucket("state.bucket", c.State.Bucket, "for state.backend gcs")
		if c.State.Object == "" {
			v.add("state.object", "required for state.backend gcs; want an object name, e.g. drwatchd/state.json")
		}
	}

	v.positive("leader.ttl", c.Leader.TTL)
	v.positive("leader.renew", c.Leader.Renew)
	if c.Leader.Enabled {
		v.bucket("leader.bucket", c.Leader.Bucket, "when leader.enabled is true")
		if c.Leader.Object == "" {
			v.add("leader.object", "required when leader.enabled is true; want an object name, e.g. drwatchd/leader.json")
		}
		if c.Leader.Identity == "" {
			v.add("leader.identity", "required when leader.enabled is true (and no $HOSTNAME); want a name unique to this replica")
		}
		if c.Leader.Renew > 0 && c.Leader.TTL > 0 && 2*c.Leader.Renew >= c.Leader.TTL {
			v.add("leader.renew", "%s is not below half of leader.ttl (%s); want renew < ttl/2, so the lease is renewed at least twice per TTL (e.g. ttl 15s, renew 5s)", c.Leader.Renew, c.Leader.TTL)
		}
	}

	for i, am := range c.Alerting.Alertmanagers {
		p := fmt.Sprintf("alerting.alertmanagers[%d]", i)
		v.httpURL(p+".url", am.URL)
		v.positive(p+".timeout", am.Timeout)
	}
	v.positive("alerting.paused_too_long", c.Alerting.PausedTooLong)
	if c.Alerting.ExternalURL != "" {
		v.httpURL("alerting.external_url", c.Alerting.ExternalURL)
	}

	if c.Journal.MaxEntries < 1 || c.Journal.MaxEntries > MaxJournalEntries {
		v.add("journal.max_entries", "%d is out of range; want 1 to %d entries per service (default %d)", c.Journal.MaxEntries, MaxJournalEntries, DefaultJournalEntries)
	}
	v.positive("journal.max_age", c.Journal.MaxAge)

	if len(c.Services) == 0 {
		v.add("services", "no services; want at least one service to watch")
	}
	names := map[string]int{}
	for i := range c.Services {
		s := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		if j, dup := names[s.Name]; dup && s.Name != "" {
			v.add(p+".name", "%q is already the name of services[%d]; service names must be unique", s.Name, j)
		} else {
			names[s.Name] = i
		}
		v.service(p, s)
	}
	v.crossField(c)
	v.errs = append(v.errs, durationFloors(c)...)
	return v.errs
}

// crossField checks settings that are each valid alone but contradict one another (issue 13,
// item 10). Every message names both fields and the limit.
func (v *validator) crossField(c *Config) {
	if c.Leader.Enabled && c.Leader.TTL > 0 && c.Leader.Renew > 0 && c.Loop.Timeout > 0 &&
		c.Loop.Timeout >= c.Leader.TTL-c.Leader.Renew {
		v.add("loop.timeout", "%s leaves the lease no room: an iteration renews the lease when it starts and the next renewal comes up to leader.renew (%s) after it ends, so want loop.timeout < leader.ttl - leader.renew (%s - %s = %s)",
			c.Loop.Timeout, c.Leader.Renew, c.Leader.TTL, c.Leader.Renew, c.Leader.TTL-c.Leader.Renew)
	}
	if c.Loop.Timeout > 0 && c.Loop.Interval > 0 && c.Loop.Timeout > c.Loop.Interval {
		v.add("loop.timeout", "%s is longer than loop.interval (%s); want timeout <= interval, or iterations overlap the schedule and observations age", c.Loop.Timeout, c.Loop.Interval)
	}
	// Port 0 asks the kernel for a free port: two listeners on ":0" get two different ones.
	if c.Admin.Enabled && c.Admin.Listen != "" && c.Admin.Listen == c.Server.Listen && !strings.HasSuffix(c.Admin.Listen, ":0") {
		v.add("admin.listen", "%q is also server.listen; want a different address for the admin API", c.Admin.Listen)
	}
	for i := range c.Services {
		s := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		h := &s.Health
		if h.Window > 0 && h.Alignment > 0 && h.Window < h.Alignment {
			v.add(p+".health.window", "%s is shorter than health.alignment (%s); want a window that holds at least one whole bucket", h.Window, h.Alignment)
		}
		if h.Staleness > 0 && h.Alignment > 0 && h.Staleness <= h.Alignment {
			v.add(p+".health.staleness", "%s is not longer than health.alignment (%s); every bucket would be stale before the next one ends: want staleness > alignment (Vertex AI metrics are visible up to 6m late; default 10m)", h.Staleness, h.Alignment)
		}
		if t := s.Failover.ScaleTimeout; t > 0 && c.Loop.Interval > 0 && t < 2*c.Loop.Interval {
			v.add(p+".failover.scale_timeout", "%s is shorter than two loop intervals (loop.interval %s); the scale-up would time out before it is polled twice: want scale_timeout >= 2 x loop.interval", t, c.Loop.Interval)
		}
		for j := range s.Regions {
			pr := s.Regions[j].Probe
			if pr == nil || pr.Timeout <= 0 || c.Loop.Timeout <= 0 || pr.Timeout < c.Loop.Timeout {
				continue
			}
			v.add(fmt.Sprintf("%s.regions[%d].probe.timeout", p, j), "%s is not below loop.timeout (%s); a probe run inside an iteration (simulation) would outlast it: want probe.timeout < loop.timeout", pr.Timeout, c.Loop.Timeout)
		}
	}
}

func (v *validator) service(p string, s *Service) {
	if !serviceNameRE.MatchString(s.Name) {
		v.add(p+".name", "%q is not a valid service name; want 1-63 characters of a-z, 0-9 and '-', starting with a letter", s.Name)
	}
	if !projectRE.MatchString(s.Project) {
		v.add(p+".project", "%q is not a GCP project ID; want 6-30 characters of a-z, 0-9 and '-', starting with a letter, not ending with '-'", s.Project)
	}

	// Regions.
	if len(s.Regions) < 2 {
		v.add(p+".regions", "%d region(s) configured; want at least two (one primary and a standby to fail over to)", len(s.Regions))
	}
	regionNames := map[string]int{}
	primary := -1
	for i := range s.Regions {
		r := &s.Regions[i]
		rp := fmt.Sprintf("%s.regions[%d]", p, i)
		if !regionRE.MatchString(r.Name) {
			v.add(rp+".name", "%q is not a GCP region name; want e.g. us-central1 or europe-west4", r.Name)
		} else if j, dup := regionNames[r.Name]; dup {
			v.add(rp+".name", "%q is already used by %s.regions[%d]; region names must be unique within a service", r.Name, p, j)
		} else {
			regionNames[r.Name] = i
		}
		switch r.Role {
		case "primary":
			if primary >= 0 {
				v.add(rp+".role", "a second primary (%s.regions[%d] is primary already); want exactly one primary per service, the others standby", p, primary)
			} else {
				primary = i
			}
		case "standby":
		default:
			v.add(rp+".role", "%q is not allowed; want primary or standby", r.Role)
		}
		if r.Priority < 0 {
			v.add(rp+".priority", "%d is negative; want 0 or more (lower is preferred)", r.Priority)
		}
		if !numericRE.MatchString(r.EndpointID) {
			v.add(rp+".endpoint_id", "%q is not a Vertex AI endpoint ID; want the endpoint's numeric ID, e.g. \"1234567890\"", r.EndpointID)
		}
		if !numericRE.MatchString(r.DeployedModelID) {
			v.add(rp+".deployed_model_id", "%q is not a deployed model ID; want the deployed model's numeric ID, e.g. \"9876543210\"", r.DeployedModelID)
		}
		switch {
		case r.BackendService == "" && s.Shift.Router == "urlmap":
			v.add(rp+".backend_service", "required for shift.router urlmap; want projects/PROJECT/global/backendServices/NAME")
		case r.BackendService != "" && !backendRE.MatchString(r.BackendService):
			v.add(rp+".backend_service", "%q is not a backend service; want projects/PROJECT/global/backendServices/NAME or its https://compute.googleapis.com/compute/v1/... URL", r.BackendService)
		}
		v.replicas(rp+".replicas", r.Replicas)
		if r.Probe != nil {
			v.probe(rp+".probe", r.Probe)
		}
		if r.Checkpoint != nil {
			v.bucket(rp+".checkpoint.bucket", r.Checkpoint.Bucket, "checkpoint bucket")
		}
	}
	if primary < 0 && len(s.Regions) > 0 {
		v.add(p+".regions", "no region has role primary; want exactly one primary per service")
	}

	v.health(p+".health", &s.Health)
	v.rpo(p, s)

	// Failover.
	f := s.Failover
	fp := p + ".failover"
	v.oneOf(fp+".mode", f.Mode, "auto", "manual", "dry-run")
	v.positive(fp+".cooldown", f.Cooldown)
	if f.MaxFailovers < 1 {
		v.add(fp+".max_failovers", "%d; want at least 1 failover per failover.window (use mode: manual to stop automatic failovers)", f.MaxFailovers)
	}
	v.positive(fp+".window", f.Window)
	v.oneOf(fp+".failback", f.Failback, "manual", "auto")
	v.positive(fp+".failback_after", f.FailbackAfter)
	v.oneOf(fp+".rpo_gate", f.RPOGate, "block", "warn")
	v.positive(fp+".scale_timeout", f.ScaleTimeout)
	v.positive(fp+".prewarm_release", f.PrewarmRelease)
	v.positive(fp+".failback_backoff", f.FailbackBackoff)
	v.positive(fp+".failback_backoff_max", f.FailbackBackoffMax)
	if f.FailbackBackoff > 0 && f.FailbackBackoffMax > 0 && f.FailbackBackoffMax < f.FailbackBackoff {
		v.add(fp+".failback_backoff_max", "%s is below failover.failback_backoff (%s); want max >= the first wait", f.FailbackBackoffMax, f.FailbackBackoff)
	}
	v.practice(fp, s)

	v.shift(p, s)
}

func (v *validator) replicas(p string, r Replicas) {
	if r.Production < 1 {
		v.add(p+".production", "%d; want the minimum replicas while serving, at least 1", r.Production)
	}
	if r.Standby < 0 {
		v.add(p+".standby", "%d is negative; want 0 or more", r.Standby)
	} else if r.Production >= 1 && r.Standby > r.Production {
		v.add(p+".standby", "%d is above replicas.production (%d); want standby <= production", r.Standby, r.Production)
	}
	if r.Production >= 1 && r.Max < r.Production {
		v.add(p+".max", "%d is below replicas.production (%d); want max >= production", r.Max, r.Production)
	}
}

func (v *validator) probe(p string, pr *Probe) {
	v.httpURL(p+".url", pr.URL)
	v.oneOf(p+".method", pr.Method, "GET", "POST")
	if pr.Body != "" && pr.Method == "GET" {
		v.add(p+".body", "a body is set but method is GET; want method: POST to send it")
	}
	v.positive(p+".interval", pr.Interval)
	v.positive(p+".timeout", pr.Timeout)
	if pr.SuspectInterval < 0 {
		v.add(p+".suspect_interval", "%s is negative; want 0 (off) or a duration up to probe.interval, e.g. \"1s\"", pr.SuspectInterval)
	} else if pr.Interval > 0 && pr.SuspectInterval > pr.Interval {
		v.add(p+".suspect_interval", "%s is above probe.interval (%s); want a shorter interval for a region in doubt, or 0 (off)", pr.SuspectInterval, pr.Interval)
	}
	if pr.Timeout > 0 && pr.Interval > 0 && pr.Timeout >= pr.Interval {
		v.add(p+".timeout", "%s is not below probe.interval (%s); want timeout < interval so probes do not overlap", pr.Timeout, pr.Interval)
	}
	if pr.ExpectStatus < 100 || pr.ExpectStatus > 599 {
		v.add(p+".expect_status", "%d is not an HTTP status; want 100 to 599, e.g. 200", pr.ExpectStatus)
	}
	auth := pr.Auth
	if auth == "" { // before ApplyDefaults
		auth = ProbeAuthNone
		if pr.GoogleAuth {
			auth = ProbeAuthAccessToken
		}
	}
	v.oneOf(p+".auth", auth, ProbeAuthNone, ProbeAuthAccessToken, ProbeAuthIDToken)
	if pr.GoogleAuth && auth != ProbeAuthAccessToken {
		v.add(p+".google_auth", "true contradicts auth %q (google_auth: true is the older spelling of auth: access-token); want only auth", auth)
	}
	if pr.Audience != "" && auth != ProbeAuthIDToken {
		v.add(p+".audience", "set but auth is %q; an audience applies to ID tokens only: want auth: id-token, or no audience", auth)
	}
	if auth == ProbeAuthIDToken && pr.Audience == "" && pr.Auth != "" {
		v.add(p+".audience", "required for auth id-token when the URL has no host; want the Cloud Run service URL or the IAP OAuth client ID")
	}
	if pr.FailuresToDown < 1 {
		v.add(p+".failures_to_down", "%d; want at least 1 consecutive failed probe", pr.FailuresToDown)
	}
}

func (v *validator) health(p string, h *Health) {
	v.positive(p+".window", h.Window)
	if h.MinRequests < 0 {
		v.add(p+".min_requests", "%d is negative; want 0 or more requests", h.MinRequests)
	}
	v.ratio(p+".error_ratio.degraded", h.ErrorRatio.Degraded)
	v.ratio(p+".error_ratio.unhealthy", h.ErrorRatio.Unhealthy)
	if h.ErrorRatio.Degraded > h.ErrorRatio.Unhealthy {
		v.add(p+".error_ratio", "degraded (%v) is above unhealthy (%v); want degraded <= unhealthy", h.ErrorRatio.Degraded, h.ErrorRatio.Unhealthy)
	}
	v.positive(p+".latency_p99.degraded", h.LatencyP99.Degraded)
	v.positive(p+".latency_p99.unhealthy", h.LatencyP99.Unhealthy)
	if h.LatencyP99.Degraded > h.LatencyP99.Unhealthy {
		v.add(p+".latency_p99", "degraded (%s) is above unhealthy (%s); want degraded <= unhealthy", h.LatencyP99.Degraded, h.LatencyP99.Unhealthy)
	}
	longest := h.Window
	if b := h.BurnRate; b != nil {
		bp := p + ".burn_rate"
		if !(b.SLO > 0 && b.SLO < 1) {
			v.add(bp+".slo", "%v is not an SLO target; want a ratio strictly between 0 and 1, e.g. 0.999", b.SLO)
		}
		if len(b.Rules) == 0 {
			v.add(bp+".rules", "no rules; want at least one {long, short, factor} rule (or omit rules for the defaults)")
		}
		for i, r := range b.Rules {
			rp := fmt.Sprintf("%s.rules[%d]", bp, i)
			v.positive(rp+".long", r.Long)
			v.positive(rp+".short", r.Short)
			if r.Short > 0 && r.Long > 0 && r.Short >= r.Long {
				v.add(rp+".short", "%s is not shorter than long (%s); want short < long, e.g. long 1h short 5m", r.Short, r.Long)
			}
			if !(r.Factor > 0) {
				v.add(rp+".factor", "%v; want a burn-rate factor above 0, e.g. 14.4", r.Factor)
			}
			longest = max(longest, r.Long)
		}
	}
	if h.UnhealthyAfter < 1 {
		v.add(p+".unhealthy_after", "%d; want at least 1 consecutive bad evaluation", h.UnhealthyAfter)
	}
	if h.HealthyAfter < 1 {
		v.add(p+".healthy_after", "%d; want at least 1 consecutive good evaluation", h.HealthyAfter)
	}
	v.oneOf(p+".quorum", h.Quorum, "any", "all")
	v.oneOf(p+".no_data", h.NoData, "unknown", "unhealthy")
	v.positive(p+".staleness", h.Staleness)
	v.positive(p+".lookback", h.Lookback)
	if h.Lookback > 0 && h.Lookback < longest {
		v.add(p+".lookback", "%s is shorter than the longest window it must cover (%s); want lookback >= health.window and every burn-rate long window", h.Lookback, longest)
	}
	if h.Alignment < Duration(time.Minute) {
		v.add(p+".alignment", "%s is below 60s; want at least 60s, the shortest alignment period Cloud Monitoring accepts (Vertex AI samples every 60s)", h.Alignment)
	}
}

func (v *validator) rpo(p string, s *Service) {
	rp := p + ".rpo"
	r := s.RPO
	if r.Target < 0 {
		v.add(rp+".target", "%s is negative; want 0 (no RPO check) or a positive duration, e.g. 15m", r.Target)
	}
	if r.Metric != "" && !metricTypeRE.MatchString(r.Metric) {
		v.add(rp+".metric", "%q is not a Cloud Monitoring metric type; want e.g. custom.googleapis.com/checkpoint/replication_lag_seconds", r.Metric)
	}
	switch r.Source {
	case "":
		if r.Target > 0 {
			v.add(rp+".target", "set to %s but there is nothing to measure it with; want rpo.metric or a checkpoint on every region", r.Target)
		}
	case "metric", "buckets", "both":
		if (r.Source == "metric" || r.Source == "both") && r.Metric == "" {
			v.add(rp+".metric", "required because rpo.source is %s; want a metric type, e.g. custom.googleapis.com/checkpoint/replication_lag_seconds", r.Source)
		}
		if r.Source == "buckets" || r.Source == "both" {
			for i, reg := range s.Regions {
				if reg.Checkpoint == nil {
					v.add(fmt.Sprintf("%s.regions[%d].checkpoint", p, i), "required because rpo.source is %s (every region needs its checkpoint bucket); want {bucket: ..., prefix: ...}", r.Source)
				}
			}
		}
	default:
		v.add(rp+".source", "%q is not allowed; want one of: metric, buckets, both", r.Source)
	}
}

func (v *validator) shift(p string, s *Service) {
	sp := p + ".shift"
	sh := s.Shift
	v.oneOf(sp+".router", sh.Router, "urlmap", "endpoint-split", "none")
	switch sh.Router {
	case "urlmap":
		if sh.URLMap == "" {
			v.add(sp+".url_map", "required for router urlmap; want projects/PROJECT/global/urlMaps/NAME")
		}
	case "endpoint-split":
		for i := 1; i < len(s.Regions); i++ {
			if s.Regions[i].EndpointID != s.Regions[0].EndpointID {
				v.add(fmt.Sprintf("%s.regions[%d].endpoint_id", p, i),
					"%q differs from regions[0].endpoint_id %q; router endpoint-split moves traffic between deployed models inside ONE Vertex AI endpoint (its traffic_split cannot cross endpoints or regions), so every region entry must name the same endpoint; use router urlmap to shift between regions",
					s.Regions[i].EndpointID, s.Regions[0].EndpointID)
			}
		}
	}
	if sh.URLMap != "" && !urlMapRE.MatchString(sh.URLMap) {
		v.add(sp+".url_map", "%q is not a URL map; want projects/PROJECT/global/urlMaps/NAME", sh.URLMap)
	}
	v.steps(sp+".steps", sh.Steps)
	v.steps(sp+".emergency_steps", sh.EmergencySteps)
	v.positive(sp+".bake", sh.Bake)
	v.positive(sp+".propagation", sh.Propagation)
	a := sh.Analysis
	ap := sp + ".analysis"
	v.ratio(ap+".max_error_ratio", a.MaxErrorRatio)
	v.positive(ap+".max_latency_p99", a.MaxLatencyP99)
	if a.MaxBaselineFactor != 0 && !(a.MaxBaselineFactor >= 1) {
		v.add(ap+".max_baseline_factor", "%v; want 0 (off) or a factor of at least 1, e.g. 2", a.MaxBaselineFactor)
	}
	if a.MinRequests < 0 {
		v.add(ap+".min_requests", "%d is negative; want 0 or more requests", a.MinRequests)
	}
}
