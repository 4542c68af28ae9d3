package backtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint/track"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// Report is a backtest's outcome.
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Interval is the loop interval replayed, Window the history read per query.
	Interval config.Duration `json:"interval"`
	Window   config.Duration `json:"read_window"`
	// Notes say what the replay cannot see (probes, buckets) and how it differs from a live run.
	Notes    []string         `json:"notes"`
	Services []*ServiceReport `json:"services"`
}

// ServiceReport is one service's replay.
type ServiceReport struct {
	Service string   `json:"service"`
	Regions []string `json:"regions"`
	// RPO says whether and how RPO was replayed.
	RPO string `json:"rpo"`
	// FirstSuspect is the first time the service became suspect (nil: never).
	FirstSuspect *Event `json:"first_suspect"`
	// FirstFailover is the first automatic failover it would have started (nil: none); From
	// and To are its regions, Reason why.
	FirstFailover *Decision `json:"first_failover"`
	// Notes explain the outcome where the replay's limits shape it.
	Notes []string `json:"notes,omitempty"`
	// Counts over the range.
	Suspects  int `json:"suspects"`
	Failovers int `json:"failovers"`
	Failbacks int `json:"failbacks"`
	Cancelled int `json:"failovers_cancelled"`
	Blocked   int `json:"blocked"`
	// WouldAct counts the actions the dry run would have taken (scale-ups, weight writes).
	WouldAct int `json:"would_act"`
	// FinalState and FinalActive are the machine's at the end of the range.
	FinalState  string `json:"final_state"`
	FinalActive string `json:"final_active"`
	// Events: every event of the machine, oldest first (at most MaxEvents; the rest are
	// counted in EventsDropped).
	Events        []Event `json:"events"`
	EventsDropped int     `json:"events_dropped,omitempty"`
	// Timeline: the service as the daemon would have seen it, sampled (at most 1000 samples).
	SampleSeconds float64  `json:"sample_seconds"`
	Timeline      []Sample `json:"timeline"`
}

// Event is one event of the failover machine.
type Event struct {
	At time.Time `json:"at"`
	// T is seconds since From.
	T      float64            `json:"t"`
	Kind   failover.EventKind `json:"kind"`
	Code   string             `json:"code,omitempty"`
	From   string             `json:"from,omitempty"`
	To     string             `json:"to,omitempty"`
	Region string             `json:"region,omitempty"`
	Reason string             `json:"reason"`
}

// Decision is a failover the machine would have started.
type Decision struct {
	At     time.Time `json:"at"`
	T      float64   `json:"t"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// Sample is the service at one instant of the replay. Slices follow Regions' order.
type Sample struct {
	T float64 `json:"t"`
	// Weights: the traffic percent per region the dry run would have set.
	Weights []float64 `json:"weights"`
	// ErrorRatios: each region's error ratio over the health window, as judged at T.
	ErrorRatios []float64 `json:"error_ratios"`
	// Failed and Total: requests of the buckets first judged since the previous sample.
	Failed int64  `json:"failed"`
	Total  int64  `json:"total"`
	State  string `json:"state"`
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// maxTextEvents bounds the events the text report lists per service.
const maxTextEvents = 200

// WriteText writes the report for people: per service, what the machine would have done and
// why, in time order.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	span := r.To.Sub(r.From)
	fmt.Fprintf(b, "Backtest from %s to %s (%s, an iteration every %s; dry run on Cloud Monitoring history)\n",
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), config.Duration(span), r.Interval)
	for _, n := range r.Notes {
		fmt.Fprintf(b, "  note: %s\n", n)
	}
	for _, s := range r.Services {
		fmt.Fprintf(b, "\n%s (regions %s)\n", s.Service, strings.Join(s.Regions, ", "))
		fmt.Fprintf(b, "  RPO: %s\n", s.RPO)
		listed := 0
		for _, ev := range s.Events {
			line := textEvent(ev)
			if line == "" {
				continue
			}
			if listed == maxTextEvents {
				fmt.Fprintf(b, "  ... more events in the JSON report (--json)\n")
				break
			}
			listed++
			fmt.Fprintf(b, "  %s (+%s)  %s\n", ev.At.Format(time.RFC3339), config.Duration(time.Duration(ev.T*float64(time.Second))), line)
		}
		switch {
		case s.FirstFailover != nil:
			fmt.Fprintf(b, "  => would have failed over %d time(s); the first at %s (+%s): %s -> %s.\n",
				s.Failovers, s.FirstFailover.At.Format(time.RFC3339), config.Duration(time.Duration(s.FirstFailover.T*float64(time.Second))),
				s.FirstFailover.From, s.FirstFailover.To)
		case s.Blocked > 0:
			fmt.Fprintf(b, "  => would not have failed over, but was blocked %d time(s) (a page each).\n", s.Blocked)
		case s.FirstSuspect != nil:
			fmt.Fprintf(b, "  => suspect %d time(s), never failed over.\n", s.Suspects)
		default:
			fmt.Fprintf(b, "  => no decision: healthy throughout.\n")
		}
		for _, n := range s.Notes {
			fmt.Fprintf(b, "  note: %s\n", n)
		}
		fmt.Fprintf(b, "  final state %s on %s; %d failover(s), %d cancelled, %d failback(s), %d blocked, %d would-act action(s)\n",
			s.FinalState, s.FinalActive, s.Failovers, s.Cancelled, s.Failbacks, s.Blocked, s.WouldAct)
		if s.EventsDropped > 0 {
			fmt.Fprintf(b, "  (%d later events not kept: more than %d)\n", s.EventsDropped, MaxEvents)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// textEvent is one event as a sentence ("" for events the text leaves to the JSON).
func textEvent(ev Event) string {
	switch ev.Kind {
	case failover.EventTransition:
		return fmt.Sprintf("%s -> %s: %s", ev.From, ev.To, ev.Reason)
	case failover.EventFailoverStarted:
		return "WOULD START " + ev.Reason
	case failover.EventWouldAct:
		return ""
	}
	return fmt.Sprintf("%s (%s): %s", ev.Kind, ev.Code, ev.Reason)
}

// replayService is one service's replay state.
type replayService struct {
	svc         *config.Service
	st          failover.State
	out         ServiceReport
	from        time.Time
	sampleEvery time.Duration
	nextSample  time.Time
	counted     []time.Time // per region: the newest bucket counted in the timeline
	req, errs   float64     // requests and errors of buckets counted since the last sample
	ratios      []float64
	// noTargetNoted: the note on blocks for want of a judged standby is in Notes.
	noTargetNoted bool
}

func newReplayService(svc *config.Service, from, to time.Time, interval time.Duration) *replayService {
	rs := &replayService{svc: svc, st: failover.Initial(svc, from), from: from, nextSample: from}
	rs.out = ServiceReport{Service: svc.Name, Events: []Event{}, Timeline: []Sample{}}
	for _, r := range svc.Regions {
		rs.out.Regions = append(rs.out.Regions, r.Name)
	}
	rs.counted = make([]time.Time, len(svc.Regions))
	rs.ratios = make([]float64, len(svc.Regions))
	rs.sampleEvery = interval
	if n := to.Sub(from) / interval; n > maxSamples {
		rs.sampleEvery = interval * time.Duration((n+maxSamples-1)/maxSamples)
	}
	rs.out.SampleSeconds = rs.sampleEvery.Seconds()
	return rs
}

// step is one loop iteration at now: a verdict per region from the buckets the poller would
// hold, RPO from the lag history, then the failover machine.
func (rs *replayService) step(ctx context.Context, eval *health.Evaluator, tracker *track.Tracker, ph *projectHistory, now time.Time) {
	svc := rs.svc
	obs := failover.Observation{Health: make(map[string]health.RegionStatus, len(svc.Regions)), Leader: true}
	cb := ph.completeBefore(now)
	for i, r := range svc.Regions {
		pts := ph.visible(health.SeriesKey{Location: r.Name, EndpointID: r.EndpointID}, now)
		hs := eval.Evaluate(svc, r.Name, health.Input{Points: pts, CompleteBefore: cb}, now)
		obs.Health[r.Name] = hs
		rs.ratios[i] = hs.ErrorRatio
		for _, p := range pts {
			if p.End.After(rs.counted[i]) && (cb.IsZero() || !p.End.After(cb)) {
				rs.req += p.Requests
				rs.errs += p.Errors
				rs.counted[i] = p.End
			}
		}
	}
	obs.RPO = tracker.Observe(ctx, svc, now)
	active := rs.st.Active
	next, _, evs := failover.Step(svc, rs.st, obs, now)
	rs.st = next
	for _, ev := range evs {
		rs.record(ev, active)
	}
	if !now.Before(rs.nextSample) {
		rs.sample(now)
		for !rs.nextSample.After(now) {
			rs.nextSample = rs.nextSample.Add(rs.sampleEvery)
		}
	}
}

func (rs *replayService) record(ev failover.Event, activeBefore string) {
	e := Event{At: ev.At, T: ev.At.Sub(rs.from).Seconds(), Kind: ev.Kind, Code: ev.Code, From: string(ev.From), To: string(ev.To), Region: ev.Region, Reason: ev.Reason}
	o := &rs.out
	switch ev.Kind {
	case failover.EventTransition:
		if ev.To == failover.Suspect {
			o.Suspects++
			if o.FirstSuspect == nil {
				c := e
				o.FirstSuspect = &c
			}
		}
	case failover.EventFailoverStarted:
		if strings.HasPrefix(ev.Reason, failover.KindFailback) {
			o.Failbacks++
			break
		}
		o.Failovers++
		if o.FirstFailover == nil {
			o.FirstFailover = &Decision{At: e.At, T: e.T, From: activeBefore, To: ev.Region, Reason: ev.Reason}
		}
	case failover.EventFailoverCancelled:
		o.Failovers--
		o.Cancelled++
	case failover.EventBlocked:
		o.Blocked++
		if ev.Code == "no-target" && strings.Contains(ev.Reason, "no metric points") && !rs.noTargetNoted {
			rs.noTargetNoted = true
			o.Notes = append(o.Notes, "Blocked for want of a target: a standby that serves no traffic has no metrics, and its probes, which would vouch for it live, have no history. "+
				"The replay cannot judge such a standby, so the machine blocks (and pages) rather than fail over blind; the time it did is when the daemon would have decided to act.")
		}
	case failover.EventWouldAct:
		o.WouldAct++
	}
	if len(o.Events) < MaxEvents {
		o.Events = append(o.Events, e)
	} else {
		o.EventsDropped++
	}
}

func (rs *replayService) sample(now time.Time) {
	s := Sample{T: now.Sub(rs.from).Seconds(), Weights: make([]float64, len(rs.svc.Regions)),
		ErrorRatios: append([]float64(nil), rs.ratios...), State: string(rs.st.State),
		Failed: int64(rs.errs + 0.5), Total: int64(rs.req + 0.5)}
	for i, r := range rs.svc.Regions {
		switch {
		case rs.st.Plan != nil && rs.st.Plan.Applied != nil:
			s.Weights[i] = float64(rs.st.Plan.Applied[r.Name])
		case r.Name == rs.st.Active:
			s.Weights[i] = 100
		}
	}
	rs.req, rs.errs = 0, 0
	rs.out.Timeline = append(rs.out.Timeline, s)
}

func (rs *replayService) finish(to time.Time) {
	rs.out.FinalState, rs.out.FinalActive = string(rs.st.State), rs.st.Active
	_ = to
}
