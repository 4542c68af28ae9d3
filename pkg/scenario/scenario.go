// Package scenario runs drwatchd's own code on the simulated cloud against a scripted world — a
// scenario file: faults on a timeline, operator commands, expectations — on a virtual clock, and
// reports what happened: decision time, RTO, failed requests, failovers, rollbacks, every event,
// and a sampled timeline that WriteSVG draws.
//
// The same world can be run under the naive policy of common tutorials (poll Cloud Monitoring
// every 60 s; fail over at once to 100 % on the first standby when the active region counted more
// than 100 errors in the last 5 minutes) so the two are compared on identical inputs.
//
// The file format is a public interface: see docs/scenarios.md.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// Scenario is one parsed scenario file.
type Scenario struct {
	Name string
	// Seed of the world's noise (default 1).
	Seed int64
	// Duration of simulated time.
	Duration time.Duration
	// Config is the daemon config file (resolved against the scenario's directory); "" means
	// the embedded demo config.
	Config string
	// Service the report is about; "" means the config's first service.
	Service  string
	World    World
	Faults   []Fault
	Commands []Command
	Expect   Expect
}

// World holds the world knobs (see sim.Spec and docs/scenarios.md); zero or nil values take the
// simulator's defaults, or the profile's. A jitter, ratio or blip rate given as 0 is zero (nil
// is the default).
type World struct {
	// Profile is "" (default) or "rough" (sim.ProfileRough, the documented worst case).
	Profile            string
	QPS                float64
	BaselineErrorRatio float64
	SamplePeriod       time.Duration
	IngestDelay        time.Duration
	RouterPropagation  time.Duration
	ScaleUp            time.Duration
	// Step is the world's simulation resolution (default 1s); raise it for long scenarios.
	Step time.Duration

	IngestJitter, RouterPropagationJitter, ScaleUpJitter *time.Duration
	StockoutRatio, AutoscaleTarget, ProbeFailureRatio    *float64
	ScaleDownAfter, ClientTimeout                        time.Duration
	ProbeBlips                                           *sim.Blips
}

// worldKeys are the keys of the world: block.
var worldKeys = []string{"profile", "qps", "baseline_error_ratio", "sample_period", "ingest_delay", "ingest_jitter",
	"router_propagation", "router_propagation_jitter", "scale_up", "scale_up_jitter", "stockout_ratio",
	"autoscale_target", "scale_down_after", "probe_failure_ratio", "probe_blips", "client_timeout", "step"}

// apply sets the world's knobs on a simulator spec.
func (w World) apply(s *sim.Spec) {
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	if w.Profile != "" {
		s.Profile = w.Profile
	}
	if w.QPS > 0 {
		s.QPS = w.QPS
	}
	if w.BaselineErrorRatio > 0 {
		s.BaselineErrorRatio = w.BaselineErrorRatio
	}
	set(&s.SamplePeriod, w.SamplePeriod)
	set(&s.IngestDelay, w.IngestDelay)
	set(&s.RouterPropagation, w.RouterPropagation)
	set(&s.ScaleUp, w.ScaleUp)
	set(&s.Step, w.Step)
	set(&s.ScaleDownAfter, w.ScaleDownAfter)
	set(&s.ClientTimeout, w.ClientTimeout)
	// Given as 0: Off (zero), not the default.
	offD := func(dst *time.Duration, v *time.Duration) {
		switch {
		case v == nil:
		case *v == 0:
			*dst = sim.Off
		default:
			*dst = *v
		}
	}
	offF := func(dst *float64, v *float64) {
		switch {
		case v == nil:
		case *v == 0:
			*dst = sim.Off
		default:
			*dst = *v
		}
	}
	offD(&s.IngestJitter, w.IngestJitter)
	offD(&s.RouterPropagationJitter, w.RouterPropagationJitter)
	offD(&s.ScaleUpJitter, w.ScaleUpJitter)
	offF(&s.StockoutRatio, w.StockoutRatio)
	offF(&s.AutoscaleTarget, w.AutoscaleTarget)
	offF(&s.ProbeFailureRatio, w.ProbeFailureRatio)
	if b := w.ProbeBlips; b != nil {
		s.ProbeBlips = *b
		if b.PerHour == 0 {
			s.ProbeBlips.PerHour = sim.Off
		}
	}
}

// Fault is one event of the world's timeline (see sim.Fault).
type Fault struct {
	At       time.Duration
	Target   string
	Kind     string
	Value    float64
	Duration time.Duration
}

// Command is an operator command submitted to the daemon at a time (pause, resume, failover,
// failback, abort). The naive policy honours pause and resume (the cron job is disabled and
// enabled again) and performs failover/failback as an immediate 100 % switch.
type Command struct {
	At     time.Duration
	Verb   failover.Verb
	Target string
	Who    string
	Why    string
}

// Expect holds the scenario's expectations; nil fields are not checked.
type Expect struct {
	// Failover: whether at least one failover must happen (false: none may; any that does is
	// a false failover).
	Failover *bool
	// DetectWithin bounds the time from the onset to the first failover decision.
	DetectWithin *time.Duration
	// RTOWithin bounds the time from the onset until >= 99 % of traffic is on healthy regions.
	RTOWithin *time.Duration
	// FinalActive is the region that must carry (most of) the traffic at the end.
	FinalActive string
	// MaxFailovers and MaxRollbacks bound the counts.
	MaxFailovers *int
	MaxRollbacks *int
	// MaxPages bounds the events that page a human (entering Blocked; the first failed
	// failback of a backoff episode). MaxFailbacks bounds the failbacks started.
	MaxPages     *int
	MaxFailbacks *int
}

// ErrInvalid is matched (errors.Is) by every error that is the scenario's fault: a parse or
// validation problem, an unknown region or service, a config that does not load.
var ErrInvalid = errors.New("invalid scenario")

// FieldError is one problem of a scenario, at a field path such as "faults[2].kind".
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

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Fault kinds, as in pkg/sim.
var faultKinds = []string{
	sim.KindOutage, sim.KindErrors, sim.KindLatency, sim.KindRecover,
	sim.KindMonitoringOutage, sim.KindAPIErrors, sim.KindStaleCheckpoints,
}

// Command verbs, as in the admin API.

// Limits that keep a scenario (and the fuzzer) within reason.
const (
	MaxDuration = 7 * 24 * time.Hour
	maxFaults   = 1000
	maxInput    = 1 << 20
)

// ParseFile reads a scenario file; its config path is relative to the file's directory.
func ParseFile(path string) (*Scenario, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, &FieldError{Msg: fmt.Sprintf("read scenario: %v", err)}
	}
	return Parse(data, filepath.Dir(path))
}

// Parse decodes a scenario strictly (an unknown key anywhere is an error) and validates it.
// Every problem is reported as a *FieldError with its path, joined with errors.Join. The config
// path is resolved against baseDir. Region names in targets are checked by Run, against the
// config.
func Parse(data []byte, baseDir string) (*Scenario, error) {
	if len(data) > maxInput {
		return nil, &FieldError{Msg: fmt.Sprintf("scenario is %d bytes; at most %d", len(data), maxInput)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{Msg: "empty scenario"}
		}
		return nil, &FieldError{Msg: fmt.Sprintf("parse YAML: %v", err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{Msg: fmt.Sprintf("more than one YAML document (a second one starts at line %d)", extra.Line)}
	} else if !errors.Is(err, io.EOF) {
		return nil, &FieldError{Msg: fmt.Sprintf("parse YAML: %v", err)}
	}
	p := &parser{}
	sc := &Scenario{Seed: 1}
	if len(doc.Content) == 0 {
		return nil, &FieldError{Msg: "empty scenario"}
	}
	p.scenario(doc.Content[0], sc)
	if len(p.errs) == 0 {
		p.validate(sc)
	}
	if len(p.errs) > 0 {
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	if sc.Config != "" && !filepath.IsAbs(sc.Config) {
		sc.Config = filepath.Join(baseDir, sc.Config)
	}
	return sc, nil
}

type parser struct {
	errs []*FieldError
}

func (p *parser) fail(path string, n *yaml.Node, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if n != nil && n.Line > 0 {
		msg += fmt.Sprintf(" (line %d)", n.Line)
	}
	p.errs = append(p.errs, &FieldError{Path: path, Msg: msg})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n != nil && n.Kind == yaml.AliasNode; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "nothing"
}

// fields walks a mapping, calling set for each known key; unknown and duplicate keys fail.
func (p *parser) fields(n *yaml.Node, path string, known []string, set func(key string, v *yaml.Node, path string)) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.fail(pathOr(path), n, "want a mapping, got %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || v == nil || k.Kind != yaml.ScalarNode {
			p.fail(pathOr(path), n, "keys must be plain names")
			continue
		}
		kp := join(path, k.Value)
		if !slices.Contains(known, k.Value) {
			p.fail(kp, k, "unknown field %q (want one of %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			p.fail(kp, k, "given twice")
			continue
		}
		seen[k.Value] = true
		if isNull(v) {
			continue // absent
		}
		set(k.Value, v, kp)
	}
}

func pathOr(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

func (p *parser) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.fail(path, n, "want a value, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) str(n *yaml.Node, path string, dst *string) {
	if s, ok := p.scalar(n, path); ok {
		*dst = strings.TrimSpace(s)
	}
}

func (p *parser) float(n *yaml.Node, path string, dst *float64) {
	s, ok := p.scalar(n, path)
	if !ok {
		return
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.fail(path, n, "%q is not a number", s)
		return
	}
	*dst = v
}

func (p *parser) integer(n *yaml.Node, path string, dst *int64) {
	s, ok := p.scalar(n, path)
	if !ok {
		return
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		p.fail(path, n, "%q is not an integer", s)
		return
	}
	*dst = v
}

func (p *parser) count(n *yaml.Node, path string, dst **int) {
	var v int64
	before := len(p.errs)
	p.integer(n, path, &v)
	if len(p.errs) > before {
		return
	}
	if v < 0 || v > 1_000_000 {
		p.fail(path, n, "must be in [0, 1000000], got %d", v)
		return
	}
	i := int(v)
	*dst = &i
}

func (p *parser) boolean(n *yaml.Node, path string, dst **bool) {
	s, ok := p.scalar(n, path)
	if !ok {
		return
	}
	switch strings.TrimSpace(s) {
	case "true":
		b := true
		*dst = &b
	case "false":
		b := false
		*dst = &b
	default:
		p.fail(path, n, "%q is not true or false", s)
	}
}

func (p *parser) duration(n *yaml.Node, path string, dst *time.Duration) {
	s, ok := p.scalar(n, path)
	if !ok {
		return
	}
	d, err := config.ParseDuration(s)
	if err != nil {
		p.fail(path, n, "%v", err)
		return
	}
	*dst = d.D()
}

func (p *parser) optDuration(n *yaml.Node, path string, dst **time.Duration) {
	var d time.Duration
	before := len(p.errs)
	p.duration(n, path, &d)
	if len(p.errs) == before {
		*dst = &d
	}
}

// given records which optional fields of a fault were present.
type given struct{ at, target, value bool }

func (p *parser) scenario(n *yaml.Node, sc *Scenario) {
	n = resolve(n)
	if n == nil || isNull(n) {
		p.fail("", nil, "empty scenario")
		return
	}
	seenDuration := false
	p.fields(n, "", []string{"name", "seed", "duration", "config", "service", "world", "faults", "commands", "expect"},
		func(key string, v *yaml.Node, path string) {
			switch key {
			case "name":
				p.str(v, path, &sc.Name)
			case "seed":
				p.integer(v, path, &sc.Seed)
			case "duration":
				seenDuration = true
				p.duration(v, path, &sc.Duration)
			case "config":
				p.str(v, path, &sc.Config)
			case "service":
				p.str(v, path, &sc.Service)
			case "world":
				p.world(v, path, &sc.World)
			case "faults":
				p.faults(v, path, sc)
			case "commands":
				p.commands(v, path, sc)
			case "expect":
				p.expect(v, path, &sc.Expect)
			}
		})
	if n.Kind == yaml.MappingNode {
		if sc.Name == "" && !p.has("name") && !hasKey(n, "name") {
			p.fail("name", nil, "required")
		}
		if !seenDuration && !p.has("duration") {
			p.fail("duration", nil, "required (simulated time, e.g. \"45m\")")
		}
	}
}

func (p *parser) has(path string) bool {
	for _, e := range p.errs {
		if e.Path == path {
			return true
		}
	}
	return false
}

func (p *parser) optFloat(n *yaml.Node, path string, dst **float64) {
	var f float64
	before := len(p.errs)
	p.float(n, path, &f)
	if len(p.errs) == before {
		*dst = &f
	}
}

func (p *parser) world(n *yaml.Node, path string, w *World) {
	p.fields(n, path, worldKeys,
		func(key string, v *yaml.Node, kp string) {
			switch key {
			case "profile":
				p.str(v, kp, &w.Profile)
			case "ingest_jitter":
				p.optDuration(v, kp, &w.IngestJitter)
			case "router_propagation_jitter":
				p.optDuration(v, kp, &w.RouterPropagationJitter)
			case "scale_up_jitter":
				p.optDuration(v, kp, &w.ScaleUpJitter)
			case "stockout_ratio":
				p.optFloat(v, kp, &w.StockoutRatio)
			case "autoscale_target":
				p.optFloat(v, kp, &w.AutoscaleTarget)
			case "probe_failure_ratio":
				p.optFloat(v, kp, &w.ProbeFailureRatio)
			case "scale_down_after":
				p.duration(v, kp, &w.ScaleDownAfter)
			case "client_timeout":
				p.duration(v, kp, &w.ClientTimeout)
			case "probe_blips":
				b := &sim.Blips{}
				p.fields(v, kp, []string{"per_hour", "length"}, func(key string, v *yaml.Node, bp string) {
					switch key {
					case "per_hour":
						p.float(v, bp, &b.PerHour)
					case "length":
						p.duration(v, bp, &b.Length)
					}
				})
				w.ProbeBlips = b
			case "qps":
				p.float(v, kp, &w.QPS)
			case "baseline_error_ratio":
				p.float(v, kp, &w.BaselineErrorRatio)
			case "sample_period":
				p.duration(v, kp, &w.SamplePeriod)
			case "ingest_delay":
				p.duration(v, kp, &w.IngestDelay)
			case "router_propagation":
				p.duration(v, kp, &w.RouterPropagation)
			case "scale_up":
				p.duration(v, kp, &w.ScaleUp)
			case "step":
				p.duration(v, kp, &w.Step)
			}
		})
}

func (p *parser) list(n *yaml.Node, path string, each func(i int, item *yaml.Node, ip string)) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(path, n, "want a list, got %s", describe(n))
		return
	}
	if len(n.Content) > maxFaults {
		p.fail(path, n, "at most %d entries, got %d", maxFaults, len(n.Content))
		return
	}
	for i, item := range n.Content {
		each(i, item, fmt.Sprintf("%s[%d]", path, i))
	}
}

func (p *parser) faults(n *yaml.Node, path string, sc *Scenario) {
	p.list(n, path, func(i int, item *yaml.Node, ip string) {
		var f Fault
		var g given
		p.fields(item, ip, []string{"at", "target", "kind", "value", "duration"}, func(key string, v *yaml.Node, kp string) {
			switch key {
			case "at":
				g.at = true
				p.duration(v, kp, &f.At)
			case "target":
				g.target = true
				p.str(v, kp, &f.Target)
			case "kind":
				p.str(v, kp, &f.Kind)
			case "value":
				g.value = true
				p.float(v, kp, &f.Value)
			case "duration":
				p.duration(v, kp, &f.Duration)
			}
		})
		p.fault(f, g, ip)
		sc.Faults = append(sc.Faults, f)
	})
}

// fault validates one fault and fills in its defaults (outage: value 1; global kinds: target *).
func (p *parser) fault(f Fault, g given, ip string) {
	if !g.at {
		p.fail(ip+".at", nil, "required (offset from the start, e.g. \"10m\")")
	}
	switch f.Kind {
	case "":
		p.fail(ip+".kind", nil, "required (want %s)", strings.Join(faultKinds, ", "))
		return
	case sim.KindMonitoringOutage, sim.KindAPIErrors:
		if g.target && f.Target != "*" {
			p.fail(ip+".target", nil, "%s is cloud-wide: want \"*\" (or no target), got %q", f.Kind, f.Target)
		}
	default:
		if !slices.Contains(faultKinds, f.Kind) {
			p.fail(ip+".kind", nil, "%q is not a fault kind (want %s)", f.Kind, strings.Join(faultKinds, ", "))
			return
		}
		if !g.target || f.Target == "" {
			p.fail(ip+".target", nil, "required for %s (a region, \"service/region\", or \"*\")", f.Kind)
		}
	}
	switch f.Kind {
	case sim.KindErrors, sim.KindAPIErrors:
		if !g.value {
			p.fail(ip+".value", nil, "required for %s (a ratio in (0,1])", f.Kind)
		} else if f.Value <= 0 || f.Value > 1 {
			p.fail(ip+".value", nil, "%s ratio must be in (0,1], got %v", f.Kind, f.Value)
		}
	case sim.KindLatency:
		if !g.value {
			p.fail(ip+".value", nil, "required for latency (seconds added to the median)")
		} else if f.Value <= 0 || f.Value > 3600 {
			p.fail(ip+".value", nil, "latency seconds must be in (0,3600], got %v", f.Value)
		}
	case sim.KindStaleCheckpoints:
		if !g.value {
			p.fail(ip+".value", nil, "required for stale-checkpoints (replication lag in seconds)")
		} else if f.Value <= 0 || f.Value > MaxDuration.Seconds() {
			p.fail(ip+".value", nil, "stale-checkpoints lag seconds must be in (0,%v], got %v", MaxDuration.Seconds(), f.Value)
		}
	case sim.KindOutage:
		if g.value && f.Value != 1 {
			p.fail(ip+".value", nil, "an outage is total: omit value or give 1, got %v (for partial failure use kind errors)", f.Value)
		}
	case sim.KindRecover, sim.KindMonitoringOutage:
		if g.value {
			p.fail(ip+".value", nil, "%s takes no value", f.Kind)
		}
	}
	if f.Kind == sim.KindRecover && f.Duration != 0 {
		p.fail(ip+".duration", nil, "a recover takes no duration")
	}
	if f.At < 0 {
		p.fail(ip+".at", nil, "must be >= 0, got %v", f.At)
	}
	if f.Duration < 0 {
		p.fail(ip+".duration", nil, "must be >= 0, got %v", f.Duration)
	}
}

func (p *parser) commands(n *yaml.Node, path string, sc *Scenario) {
	p.list(n, path, func(i int, item *yaml.Node, ip string) {
		var c Command
		hasAt := false
		p.fields(item, ip, []string{"at", "verb", "target", "who", "why"}, func(key string, v *yaml.Node, kp string) {
			switch key {
			case "at":
				hasAt = true
				p.duration(v, kp, &c.At)
			case "verb":
				var verb string
				p.str(v, kp, &verb)
				c.Verb = failover.Verb(verb)
			case "target":
				p.str(v, kp, &c.Target)
			case "who":
				p.str(v, kp, &c.Who)
			case "why":
				p.str(v, kp, &c.Why)
			}
		})
		if !hasAt && !p.has(ip+".at") {
			p.fail(ip+".at", nil, "required")
		}
		if c.At < 0 {
			p.fail(ip+".at", nil, "must be >= 0, got %v", c.At)
		}
		if !c.Verb.Known() {
			p.fail(ip+".verb", nil, "%q is not a command (want %s)", c.Verb, failover.VerbList())
		}
		if c.Target != "" && c.Verb != failover.VerbFailover {
			p.fail(ip+".target", nil, "only a failover takes a target")
		}
		if c.Who == "" {
			c.Who = "scenario"
		}
		sc.Commands = append(sc.Commands, c)
	})
}

func (p *parser) expect(n *yaml.Node, path string, e *Expect) {
	p.fields(n, path, []string{"failover", "detect_within", "rto_within", "final_active", "max_failovers", "max_rollbacks", "max_pages", "max_failbacks"},
		func(key string, v *yaml.Node, kp string) {
			switch key {
			case "failover":
				p.boolean(v, kp, &e.Failover)
			case "detect_within":
				p.optDuration(v, kp, &e.DetectWithin)
			case "rto_within":
				p.optDuration(v, kp, &e.RTOWithin)
			case "final_active":
				p.str(v, kp, &e.FinalActive)
			case "max_failovers":
				p.count(v, kp, &e.MaxFailovers)
			case "max_rollbacks":
				p.count(v, kp, &e.MaxRollbacks)
			case "max_pages":
				p.count(v, kp, &e.MaxPages)
			case "max_failbacks":
				p.count(v, kp, &e.MaxFailbacks)
			}
		})
}

// validate checks the values that parsed.
func (p *parser) validate(sc *Scenario) {
	if strings.TrimSpace(sc.Name) == "" {
		p.fail("name", nil, "must not be empty")
	}
	switch {
	case sc.Duration <= 0:
		p.fail("duration", nil, "must be > 0, got %v", sc.Duration)
	case sc.Duration > MaxDuration:
		p.fail("duration", nil, "at most %v, got %v", MaxDuration, sc.Duration)
	}
	w := sc.World
	if w.QPS < 0 || w.QPS > 1e6 {
		p.fail("world.qps", nil, "must be in [0, 1e6], got %v", w.QPS)
	}
	if w.BaselineErrorRatio < 0 || w.BaselineErrorRatio >= 1 {
		p.fail("world.baseline_error_ratio", nil, "must be in [0,1), got %v", w.BaselineErrorRatio)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"sample_period", w.SamplePeriod, time.Second}, {"ingest_delay", w.IngestDelay, 0},
		{"router_propagation", w.RouterPropagation, 0}, {"scale_up", w.ScaleUp, 0}, {"step", w.Step, 100 * time.Millisecond},
	} {
		if d.v < 0 || (d.v > 0 && d.v < d.min) || d.v > 24*time.Hour {
			p.fail("world."+d.name, nil, "must be in [%v, 24h] (or absent for the default), got %v", d.min, d.v)
		}
	}
	if w.Step > time.Minute {
		p.fail("world.step", nil, "at most 1m, got %v", w.Step)
	}
	switch w.Profile {
	case "", sim.ProfileDefault, sim.ProfileRough:
	default:
		p.fail("world.profile", nil, "%q is not a profile (want %s or %s)", w.Profile, sim.ProfileDefault, sim.ProfileRough)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{
		{"ingest_jitter", w.IngestJitter}, {"router_propagation_jitter", w.RouterPropagationJitter}, {"scale_up_jitter", w.ScaleUpJitter},
	} {
		if d.v != nil && (*d.v < 0 || *d.v > 24*time.Hour) {
			p.fail("world."+d.name, nil, "must be in [0, 24h], got %v", *d.v)
		}
	}
	for _, r := range []struct {
		name string
		v    *float64
	}{
		{"stockout_ratio", w.StockoutRatio}, {"autoscale_target", w.AutoscaleTarget}, {"probe_failure_ratio", w.ProbeFailureRatio},
	} {
		if r.v != nil && (*r.v < 0 || *r.v > 1) {
			p.fail("world."+r.name, nil, "must be in [0,1], got %v", *r.v)
		}
	}
	if w.ScaleDownAfter < 0 || w.ScaleDownAfter > 24*time.Hour {
		p.fail("world.scale_down_after", nil, "must be in [0, 24h] (0 or absent for the default), got %v", w.ScaleDownAfter)
	}
	if w.ClientTimeout < 0 || w.ClientTimeout > time.Hour {
		p.fail("world.client_timeout", nil, "must be in [0, 1h] (0 or absent for the default), got %v", w.ClientTimeout)
	}
	if b := w.ProbeBlips; b != nil {
		if b.PerHour < 0 || b.PerHour > 3600 {
			p.fail("world.probe_blips.per_hour", nil, "must be in [0, 3600], got %v", b.PerHour)
		}
		if b.Length < 0 || b.Length > time.Hour {
			p.fail("world.probe_blips.length", nil, "must be in [0, 1h] (0 or absent for the default %v), got %v", sim.DefaultBlipLength, b.Length)
		}
	}
	for i, f := range sc.Faults {
		if sc.Duration > 0 && f.At >= sc.Duration {
			p.fail(fmt.Sprintf("faults[%d].at", i), nil, "%v is not before the end of the scenario (%v)", f.At, sc.Duration)
		}
	}
	for i, c := range sc.Commands {
		if sc.Duration > 0 && c.At >= sc.Duration {
			p.fail(fmt.Sprintf("commands[%d].at", i), nil, "%v is not before the end of the scenario (%v)", c.At, sc.Duration)
		}
	}
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxInput+1))
}

// simFaults returns the faults for the simulator (outage value 1; cloud-wide target "*").
func (sc *Scenario) simFaults() []sim.Fault {
	out := make([]sim.Fault, len(sc.Faults))
	for i, f := range sc.Faults {
		t := f.Target
		if t == "" {
			t = "*"
		}
		v := f.Value
		if f.Kind == sim.KindOutage {
			v = 1
		}
		out[i] = sim.Fault{At: f.At, Target: t, Kind: f.Kind, Value: v, Duration: f.Duration}
	}
	return out
}
