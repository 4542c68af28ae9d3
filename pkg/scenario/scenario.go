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
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/yamlx"
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

// Parse decodes a scenario strictly with the configuration's decoder (pkg/yamlx: an unknown key
// anywhere is an error, with the key probably meant; a key given twice is an error; aliases are
// bounded) and validates it. Every problem is reported as a *FieldError with its path, joined
// with errors.Join. The config path is resolved against baseDir. Region names in targets are
// checked by Run, against the config.
func Parse(data []byte, baseDir string) (*Scenario, error) {
	if len(data) > maxInput {
		return nil, &FieldError{Msg: fmt.Sprintf("scenario is %d bytes; at most %d", len(data), maxInput)}
	}
	root, err := yamlx.ParseDocument(data)
	var multi *yamlx.MultiDocError
	switch {
	case errors.As(err, &multi):
		return nil, &FieldError{Msg: multi.Error()}
	case err != nil:
		return nil, &FieldError{Msg: fmt.Sprintf("parse YAML: %v", err)}
	case root == nil:
		return nil, &FieldError{Msg: "empty scenario"}
	}
	p := &parser{}
	p.yd.MaxItems = maxFaults
	raw := rawScenario{Seed: 1}
	p.yd.Decode(root, &raw, "")
	if p.yd.TooMany() {
		// Nothing else is worth reporting about a document built to explode.
		ye := p.yd.Errors()
		return nil, &FieldError{Path: ye[len(ye)-1].Path, Msg: ye[len(ye)-1].Msg}
	}
	sc := p.scenario(&raw)
	var errs []error
	for _, e := range p.yd.Errors() {
		path := e.Path
		if path == "" {
			path = "(document)"
		}
		errs = append(errs, &FieldError{Path: path, Msg: e.Msg})
	}
	for _, e := range p.errs {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if sc.Config != "" && !filepath.IsAbs(sc.Config) {
		sc.Config = filepath.Join(baseDir, sc.Config)
	}
	return sc, nil
}

// rawScenario is a scenario file as written, decoded by yamlx onto its defaults; pointers tell
// a key that is absent (or null) from one that is given.
type rawScenario struct {
	Name     *string          `yaml:"name"`
	Seed     int64            `yaml:"seed"`
	Duration *config.Duration `yaml:"duration"`
	Config   string           `yaml:"config"`
	Service  string           `yaml:"service"`
	World    rawWorld         `yaml:"world"`
	Faults   []rawFault       `yaml:"faults"`
	Commands []rawCommand     `yaml:"commands"`
	Expect   rawExpect        `yaml:"expect"`
}

// rawWorld is the world: block (see World).
type rawWorld struct {
	Profile                 string           `yaml:"profile"`
	QPS                     float64          `yaml:"qps"`
	BaselineErrorRatio      float64          `yaml:"baseline_error_ratio"`
	SamplePeriod            config.Duration  `yaml:"sample_period"`
	IngestDelay             config.Duration  `yaml:"ingest_delay"`
	IngestJitter            *config.Duration `yaml:"ingest_jitter"`
	RouterPropagation       config.Duration  `yaml:"router_propagation"`
	RouterPropagationJitter *config.Duration `yaml:"router_propagation_jitter"`
	ScaleUp                 config.Duration  `yaml:"scale_up"`
	ScaleUpJitter           *config.Duration `yaml:"scale_up_jitter"`
	StockoutRatio           *float64         `yaml:"stockout_ratio"`
	AutoscaleTarget         *float64         `yaml:"autoscale_target"`
	ScaleDownAfter          config.Duration  `yaml:"scale_down_after"`
	ProbeFailureRatio       *float64         `yaml:"probe_failure_ratio"`
	ProbeBlips              *rawBlips        `yaml:"probe_blips"`
	ClientTimeout           config.Duration  `yaml:"client_timeout"`
	Step                    config.Duration  `yaml:"step"`
}

type rawBlips struct {
	PerHour float64         `yaml:"per_hour"`
	Length  config.Duration `yaml:"length"`
}

type rawFault struct {
	At       *config.Duration `yaml:"at"`
	Target   *string          `yaml:"target"`
	Kind     string           `yaml:"kind"`
	Value    *float64         `yaml:"value"`
	Duration config.Duration  `yaml:"duration"`
}

type rawCommand struct {
	At     *config.Duration `yaml:"at"`
	Verb   string           `yaml:"verb"`
	Target string           `yaml:"target"`
	Who    string           `yaml:"who"`
	Why    string           `yaml:"why"`
}

type rawExpect struct {
	Failover     *bool            `yaml:"failover"`
	DetectWithin *config.Duration `yaml:"detect_within"`
	RTOWithin    *config.Duration `yaml:"rto_within"`
	FinalActive  string           `yaml:"final_active"`
	MaxFailovers *int             `yaml:"max_failovers"`
	MaxRollbacks *int             `yaml:"max_rollbacks"`
	MaxPages     *int             `yaml:"max_pages"`
	MaxFailbacks *int             `yaml:"max_failbacks"`
}

// parser turns a decoded rawScenario into a Scenario and validates it.
type parser struct {
	yd   yamlx.Decoder
	errs []*FieldError
}

// fail records a validation problem at path, unless a decoding problem at or above it already
// explains it.
func (p *parser) fail(path string, format string, a ...any) {
	if p.yd.Covers(path) {
		return
	}
	p.errs = append(p.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, a...)})
}

func optD(d *config.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.D()
	return &v
}

// scenario converts and validates the whole file.
func (p *parser) scenario(r *rawScenario) *Scenario {
	sc := &Scenario{Seed: r.Seed, Config: strings.TrimSpace(r.Config), Service: strings.TrimSpace(r.Service)}
	if r.Name == nil {
		p.fail("name", "required")
	} else {
		sc.Name = strings.TrimSpace(*r.Name)
		if sc.Name == "" {
			p.fail("name", "must not be empty")
		}
	}
	if r.Duration == nil {
		p.fail("duration", "required (simulated time, e.g. \"45m\")")
	} else {
		sc.Duration = r.Duration.D()
		switch {
		case sc.Duration <= 0:
			p.fail("duration", "must be > 0, got %v", sc.Duration)
		case sc.Duration > MaxDuration:
			p.fail("duration", "at most %v, got %v", MaxDuration, sc.Duration)
		}
	}
	sc.World = p.world(r.World)
	for i, rf := range r.Faults {
		sc.Faults = append(sc.Faults, p.fault(rf, yamlx.Index("faults", i), sc.Duration))
	}
	for i, rc := range r.Commands {
		sc.Commands = append(sc.Commands, p.command(rc, yamlx.Index("commands", i), sc.Duration))
	}
	sc.Expect = p.expect(r.Expect)
	return sc
}

// world converts and validates the world: block.
func (p *parser) world(r rawWorld) World {
	w := World{
		Profile: strings.TrimSpace(r.Profile), QPS: r.QPS, BaselineErrorRatio: r.BaselineErrorRatio,
		SamplePeriod: r.SamplePeriod.D(), IngestDelay: r.IngestDelay.D(), RouterPropagation: r.RouterPropagation.D(),
		ScaleUp: r.ScaleUp.D(), Step: r.Step.D(),
		IngestJitter: optD(r.IngestJitter), RouterPropagationJitter: optD(r.RouterPropagationJitter), ScaleUpJitter: optD(r.ScaleUpJitter),
		StockoutRatio: r.StockoutRatio, AutoscaleTarget: r.AutoscaleTarget, ProbeFailureRatio: r.ProbeFailureRatio,
		ScaleDownAfter: r.ScaleDownAfter.D(), ClientTimeout: r.ClientTimeout.D(),
	}
	if b := r.ProbeBlips; b != nil {
		w.ProbeBlips = &sim.Blips{PerHour: b.PerHour, Length: b.Length.D()}
	}
	if w.QPS < 0 || w.QPS > 1e6 {
		p.fail("world.qps", "must be in [0, 1e6], got %v", w.QPS)
	}
	if w.BaselineErrorRatio < 0 || w.BaselineErrorRatio >= 1 {
		p.fail("world.baseline_error_ratio", "must be in [0,1), got %v", w.BaselineErrorRatio)
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
			p.fail("world."+d.name, "must be in [%v, 24h] (or absent for the default), got %v", d.min, d.v)
		}
	}
	if w.Step > time.Minute {
		p.fail("world.step", "at most 1m, got %v", w.Step)
	}
	switch w.Profile {
	case "", sim.ProfileDefault, sim.ProfileRough:
	default:
		p.fail("world.profile", "%q is not a profile (want %s or %s)", w.Profile, sim.ProfileDefault, sim.ProfileRough)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{
		{"ingest_jitter", w.IngestJitter}, {"router_propagation_jitter", w.RouterPropagationJitter}, {"scale_up_jitter", w.ScaleUpJitter},
	} {
		if d.v != nil && (*d.v < 0 || *d.v > 24*time.Hour) {
			p.fail("world."+d.name, "must be in [0, 24h], got %v", *d.v)
		}
	}
	for _, r := range []struct {
		name string
		v    *float64
	}{
		{"stockout_ratio", w.StockoutRatio}, {"autoscale_target", w.AutoscaleTarget}, {"probe_failure_ratio", w.ProbeFailureRatio},
	} {
		if r.v != nil && (*r.v < 0 || *r.v > 1) {
			p.fail("world."+r.name, "must be in [0,1], got %v", *r.v)
		}
	}
	if w.ScaleDownAfter < 0 || w.ScaleDownAfter > 24*time.Hour {
		p.fail("world.scale_down_after", "must be in [0, 24h] (0 or absent for the default), got %v", w.ScaleDownAfter)
	}
	if w.ClientTimeout < 0 || w.ClientTimeout > time.Hour {
		p.fail("world.client_timeout", "must be in [0, 1h] (0 or absent for the default), got %v", w.ClientTimeout)
	}
	if b := w.ProbeBlips; b != nil {
		if b.PerHour < 0 || b.PerHour > 3600 {
			p.fail("world.probe_blips.per_hour", "must be in [0, 3600], got %v", b.PerHour)
		}
		if b.Length < 0 || b.Length > time.Hour {
			p.fail("world.probe_blips.length", "must be in [0, 1h] (0 or absent for the default %v), got %v", sim.DefaultBlipLength, b.Length)
		}
	}
	return w
}

// fault converts and validates one fault (outage: value 1; global kinds: target *, both filled
// in by simFaults).
func (p *parser) fault(r rawFault, ip string, total time.Duration) Fault {
	f := Fault{Kind: strings.TrimSpace(r.Kind), Duration: r.Duration.D()}
	if r.At != nil {
		f.At = r.At.D()
	} else {
		p.fail(ip+".at", "required (offset from the start, e.g. \"10m\")")
	}
	if r.Target != nil {
		f.Target = strings.TrimSpace(*r.Target)
	}
	if r.Value != nil {
		f.Value = *r.Value
	}
	switch f.Kind {
	case "":
		p.fail(ip+".kind", "required (want %s)", strings.Join(faultKinds, ", "))
		return f
	case sim.KindMonitoringOutage, sim.KindAPIErrors:
		if r.Target != nil && f.Target != "*" {
			p.fail(ip+".target", "%s is cloud-wide: want \"*\" (or no target), got %q", f.Kind, f.Target)
		}
	default:
		if !slices.Contains(faultKinds, f.Kind) {
			p.fail(ip+".kind", "%q is not a fault kind (want %s)", f.Kind, strings.Join(faultKinds, ", "))
			return f
		}
		if r.Target == nil || f.Target == "" {
			p.fail(ip+".target", "required for %s (a region, \"service/region\", or \"*\")", f.Kind)
		}
	}
	given := r.Value != nil
	switch f.Kind {
	case sim.KindErrors, sim.KindAPIErrors:
		if !given {
			p.fail(ip+".value", "required for %s (a ratio in (0,1])", f.Kind)
		} else if f.Value <= 0 || f.Value > 1 {
			p.fail(ip+".value", "%s ratio must be in (0,1], got %v", f.Kind, f.Value)
		}
	case sim.KindLatency:
		if !given {
			p.fail(ip+".value", "required for latency (seconds added to the median)")
		} else if f.Value <= 0 || f.Value > 3600 {
			p.fail(ip+".value", "latency seconds must be in (0,3600], got %v", f.Value)
		}
	case sim.KindStaleCheckpoints:
		if !given {
			p.fail(ip+".value", "required for stale-checkpoints (replication lag in seconds)")
		} else if f.Value <= 0 || f.Value > MaxDuration.Seconds() {
			p.fail(ip+".value", "stale-checkpoints lag seconds must be in (0,%v], got %v", MaxDuration.Seconds(), f.Value)
		}
	case sim.KindOutage:
		if given && f.Value != 1 {
			p.fail(ip+".value", "an outage is total: omit value or give 1, got %v (for partial failure use kind errors)", f.Value)
		}
	case sim.KindRecover, sim.KindMonitoringOutage:
		if given {
			p.fail(ip+".value", "%s takes no value", f.Kind)
		}
	}
	if f.Kind == sim.KindRecover && f.Duration != 0 {
		p.fail(ip+".duration", "a recover takes no duration")
	}
	if f.At < 0 {
		p.fail(ip+".at", "must be >= 0, got %v", f.At)
	} else if total > 0 && f.At >= total {
		p.fail(ip+".at", "%v is not before the end of the scenario (%v)", f.At, total)
	}
	if f.Duration < 0 {
		p.fail(ip+".duration", "must be >= 0, got %v", f.Duration)
	}
	return f
}

// command converts and validates one operator command.
func (p *parser) command(r rawCommand, ip string, total time.Duration) Command {
	c := Command{Verb: failover.Verb(strings.TrimSpace(r.Verb)), Target: strings.TrimSpace(r.Target),
		Who: strings.TrimSpace(r.Who), Why: strings.TrimSpace(r.Why)}
	if r.At == nil {
		p.fail(ip+".at", "required")
	} else {
		c.At = r.At.D()
	}
	if c.At < 0 {
		p.fail(ip+".at", "must be >= 0, got %v", c.At)
	} else if total > 0 && c.At >= total {
		p.fail(ip+".at", "%v is not before the end of the scenario (%v)", c.At, total)
	}
	if !c.Verb.Known() {
		p.fail(ip+".verb", "%q is not a command (want %s)", c.Verb, failover.VerbList())
	}
	if c.Target != "" && c.Verb != failover.VerbFailover {
		p.fail(ip+".target", "only a failover takes a target")
	}
	if c.Who == "" {
		c.Who = "scenario"
	}
	return c
}

// expect converts and validates the expectations.
func (p *parser) expect(r rawExpect) Expect {
	e := Expect{Failover: r.Failover, DetectWithin: optD(r.DetectWithin), RTOWithin: optD(r.RTOWithin),
		FinalActive:  strings.TrimSpace(r.FinalActive),
		MaxFailovers: r.MaxFailovers, MaxRollbacks: r.MaxRollbacks, MaxPages: r.MaxPages, MaxFailbacks: r.MaxFailbacks}
	for _, c := range []struct {
		key string
		v   *int
	}{{"max_failovers", e.MaxFailovers}, {"max_rollbacks", e.MaxRollbacks}, {"max_pages", e.MaxPages}, {"max_failbacks", e.MaxFailbacks}} {
		if c.v != nil && (*c.v < 0 || *c.v > 1_000_000) {
			p.fail("expect."+c.key, "must be in [0, 1000000], got %d", *c.v)
		}
	}
	return e
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

// The bar of issue 12 on an outage scenario: drwatchd's impaired requests (failed + slow) at most
// this multiple of the oracle's.
const (
	OracleBar     = 2.5
	OracleBarHard = 1.5
)

// HardOutage reports whether every fault of the scenario that impairs requests (outage, errors,
// latency) is an outage: the region serves nothing, every signal says so at once (probes fail,
// errors at 100 %), and the only cost beyond the oracle's is detection, propagation and
// capacity. Faults that impair no request (Monitoring or cloud API outages, stale checkpoints,
// recover) do not make an outage softer. A partial outage (errors, latency) is judged on
// statistics that take evidence to gather, hence the looser bar.
func (s *Scenario) HardOutage() bool {
	hard := false
	for _, f := range s.Faults {
		switch f.Kind {
		case sim.KindOutage:
			hard = true
		case sim.KindErrors, sim.KindLatency:
			return false
		}
	}
	return hard
}

// Bar is the scenario's ratio bar to the oracle: OracleBarHard on a hard outage, OracleBar
// otherwise.
func (s *Scenario) Bar() float64 {
	if s.HardOutage() {
		return OracleBarHard
	}
	return OracleBar
}
