package server

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

var pageNow = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func TestStateColours(t *testing.T) {
	for _, tc := range []struct {
		state failover.StateName
		want  string
	}{
		{failover.Healthy, classOK},
		{failover.FailedOver, classWarn}, // serving from the standby is what drwatchd is for: not an error
		{failover.Suspect, classWarn},
		{failover.FailingOver, classWarn},
		{failover.FailingBack, classWarn},
		{failover.RollingBack, classWarn},
		{failover.Paused, classWarn},
		{failover.Blocked, classBad}, // a human must act
		{failover.StateName("from-a-newer-build"), classBad},
	} {
		if got := stateClass(tc.state); got != tc.want {
			t.Errorf("stateClass(%s) = %s, want %s", tc.state, got, tc.want)
		}
	}
}

func TestRegionVerdictColours(t *testing.T) {
	probeOK := &health.ProbeResult{OK: true, Status: 200}
	probeFail := &health.ProbeResult{OK: false, Status: 503, ConsecutiveFailures: 2}
	grace := pageNow.Add(7 * time.Minute)
	spike := health.RegionStatus{Verdict: health.Unhealthy, Bad: 4, Reason: "error ratio 0.2 > 0.05 over 5m", Since: pageNow.Add(-2 * time.Minute)}
	withProbe := func(h health.RegionStatus, p *health.ProbeResult) health.RegionStatus { h.Probe = p; return h }
	for _, tc := range []struct {
		name      string
		rs        api.RegionStatus
		label     string
		class     string
		noteHas   string
		reasonHas string
	}{
		{"not evaluated yet", api.RegionStatus{}, "not evaluated", classIdle, "", ""},
		{"healthy", api.RegionStatus{Health: health.RegionStatus{Verdict: health.Healthy}}, "healthy", classOK, "", ""},
		{"degraded", api.RegionStatus{Health: health.RegionStatus{Verdict: health.Degraded, Bad: 1}}, "degraded", classWarn, "", ""},
		{"unhealthy now", api.RegionStatus{Health: spike}, "unhealthy", classBad, "", "error ratio 0.2"},
		{"unhealthy latch, latest evaluation good", api.RegionStatus{Health: health.RegionStatus{Verdict: health.Unhealthy, Bad: 0, Good: 2}},
			"recovering", classWarn, "2 so far", ""},
		{"unknown", api.RegionStatus{Health: health.RegionStatus{Verdict: health.Unknown, LastKnown: health.Healthy}}, "unknown", classWarn, "last known: healthy", ""},
		{"unknown during an outage", api.RegionStatus{Health: health.RegionStatus{Verdict: health.Unknown, LastKnown: health.Unhealthy}}, "unknown", classBad, "last known: unhealthy", ""},
		// The active region after an emergency shift: its window holds its own scale-up spike;
		// the machine judges it by fresh signals, and so does the page.
		{"active in the post-shift grace, probe passing", api.RegionStatus{Health: withProbe(spike, probeOK), ShiftGraceUntil: grace},
			"healthy now", classOK, "until 10:07:00Z its metric window still holds the shift (unhealthy for 2m0s)", "error ratio 0.2"},
		{"active in the post-shift grace, degraded window", api.RegionStatus{Health: withProbe(health.RegionStatus{Verdict: health.Degraded}, probeOK), ShiftGraceUntil: grace},
			"healthy now", classOK, "(degraded)", ""},
		{"active in the post-shift grace, no probe", api.RegionStatus{Health: spike, ShiftGraceUntil: grace}, "serving", classOK, "only fresh signals", ""},
		{"active in the post-shift grace, probe failing", api.RegionStatus{Health: withProbe(spike, probeFail), ShiftGraceUntil: grace}, "unhealthy", classBad, "", ""},
		{"active in the post-shift grace, hard down", api.RegionStatus{Health: health.RegionStatus{Verdict: health.Unhealthy, Bad: 3, HardDown: true}, ShiftGraceUntil: grace},
			"unhealthy", classBad, "", ""},
		{"grace over", api.RegionStatus{Health: withProbe(spike, probeOK), ShiftGraceUntil: pageNow}, "unhealthy", classBad, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := regionVerdict(tc.rs, pageNow)
			if v.Label != tc.label || v.Class != tc.class {
				t.Errorf("label %q class %q, want %q %q", v.Label, v.Class, tc.label, tc.class)
			}
			if tc.noteHas != "" && !strings.Contains(v.Note, tc.noteHas) {
				t.Errorf("note %q lacks %q", v.Note, tc.noteHas)
			}
			if tc.noteHas == "" && v.Note != "" {
				t.Errorf("unexpected note %q", v.Note)
			}
			if !strings.Contains(v.Reason, tc.reasonHas) {
				t.Errorf("reason %q lacks %q (the evaluator's reason is always shown)", v.Reason, tc.reasonHas)
			}
		})
	}
	// The verdict's age and its data's age are shown.
	v := regionVerdict(api.RegionStatus{Health: health.RegionStatus{Verdict: health.Healthy, Since: pageNow.Add(-130 * time.Second), MetricsAt: pageNow.Add(-4 * time.Minute)}}, pageNow)
	if v.For != "for 2m10s" || v.DataAge != "metrics 4m0s old" {
		t.Errorf("for %q, data age %q", v.For, v.DataAge)
	}
}

func TestEventColours(t *testing.T) {
	for kind, want := range map[failover.EventKind]string{
		failover.EventBlocked: classBad, failover.EventRolledBack: classBad, failover.EventPlanFailed: classBad,
		failover.EventRPOViolation: classBad, failover.EventFailbackFailed: classBad, failover.EventConflict: classBad,
		failover.EventFailoverStarted: classWarn, failover.EventFailoverCompleted: classWarn, failover.EventPaused: classWarn,
		failover.EventTransition: "", failover.EventResumed: "", failover.EventReconciled: "",
		failover.EventPracticeFailed: classBad, failover.EventPracticeSucceeded: classOK,
		failover.EventPracticeAborted: classWarn, failover.EventPracticeSkipped: classWarn, failover.EventPracticeStarted: "",
	} {
		if got := eventClass(kind); got != want {
			t.Errorf("eventClass(%s) = %q, want %q", kind, got, want)
		}
	}
}

func TestPageEventsNewestFirst(t *testing.T) {
	var evs []failover.Event
	for i := range 12 {
		evs = append(evs, failover.Event{At: pageNow.Add(time.Duration(i) * time.Second), Kind: failover.EventTransition, From: failover.Healthy, To: failover.Suspect, Reason: "r"})
	}
	evs = append(evs, failover.Event{At: pageNow.Add(time.Minute), Kind: failover.EventFailoverStarted, Region: "us-east1"})
	got := pageEventsFromState(evs, 8)
	if len(got) != 8 || got[0].Kind != "failover-started" || got[0].Subject != "us-east1" || got[1].Subject != "healthy → suspect" || !got[1].At.After(got[2].At) {
		t.Errorf("events %+v: want 8, newest first", got)
	}
}

func TestPlanProgress(t *testing.T) {
	pl := &plan.Plan{Kind: "failover", From: "a", To: "b", Steps: []int{10, 25, 50, 100}, Step: 2, Phase: plan.Baking,
		Since: pageNow.Add(-15 * time.Second), BakeUntil: pageNow.Add(45 * time.Second), Started: pageNow.Add(-3 * time.Minute),
		Target: plan.Weights{"a": 50, "b": 50, "c": 0}}
	v := buildPlan(pl, plan.Weights{"a": 75, "b": 25, "c": 0}, pageNow)
	if v.Step != 3 || v.Steps != 4 || v.StepPercent != 50 || v.BakeLeft != "45s" || v.Started != "3m0s ago" {
		t.Errorf("plan %+v", v)
	}
	var states []string
	for _, s := range v.Segments {
		states = append(states, s.State)
	}
	if strings.Join(states, ",") != "done,done,now,todo" || v.Segments[2].Fill != 25 || v.Segments[0].Fill != 100 {
		t.Errorf("segments %+v: want two done, the third a quarter through its bake, one to do", v.Segments)
	}
	if len(v.Weights) != 2 || v.Weights[0] != (planWeight{Region: "a", Now: "75%", Target: "50%", Moving: true}) || v.Weights[1].Target != "50%" {
		t.Errorf("weights %+v: want a 75%% → 50%%, b 25%% → 50%%, and c (0 → 0) left out", v.Weights)
	}
	// Weights unreadable: shown as unknown, never as zero.
	if v := buildPlan(pl, nil, pageNow); v.Weights[0].Now != "?" {
		t.Errorf("unreadable weights shown as %q", v.Weights[0].Now)
	}
}

// The whole page renders from a status with history, a plan and a region in the post-shift
// grace: sparklines inline, no script, timestamps in no-wrap spans.
func TestStatusPageRenders(t *testing.T) {
	share := make(api.Series, 60)
	errs := make(api.Series, 60)
	for i := range share {
		share[i], errs[i] = float32(i*100/59), 0.001
	}
	st := api.Status{Version: "v", Time: pageNow, Leader: true, Services: []api.ServiceStatus{{
		Name: "fraud-scorer", Mode: "auto",
		State: failover.State{State: failover.FailedOver, Active: "us-east1", Primary: "us-central1",
			Events: []failover.Event{{At: pageNow.Add(-time.Minute), Kind: failover.EventFailoverCompleted, Reason: "done <b>"}}},
		Weights: plan.Weights{"us-central1": 0, "us-east1": 100},
		Regions: []api.RegionStatus{
			{Name: "us-central1", Role: "primary", Health: health.RegionStatus{Verdict: health.Unhealthy, Bad: 9}},
			{Name: "us-east1", Role: "standby", Weight: 100, ShiftGraceUntil: pageNow.Add(time.Minute),
				RPO:    &checkpoint.RegionRPO{Known: true, Age: 90 * time.Second},
				Health: health.RegionStatus{Verdict: health.Unhealthy, Bad: 3, Requests: 100, ErrorRatio: 0.2, Probe: &health.ProbeResult{OK: true}}},
		},
		History: &api.History{Bucket: time.Minute, End: pageNow, ErrorThreshold: 0.05,
			Regions: []api.RegionHistory{{Region: "us-east1", Share: share, ErrorRatio: errs}}},
	}}}
	rec := httptest.NewRecorder()
	renderStatusPage(rec, st, nil)
	body := rec.Body.Bytes()
	for _, want := range []string{
		`id="state-fraud-scorer">failed-over<`, `class="badge warn" id="state-fraud-scorer"`,
		`<svg class="spark share" id="share-fraud-scorer-us-east1"`, `<polyline points="0.0,22.5 `,
		`id="verdict-fraud-scorer-us-east1">healthy now<`, `id="verdict-fraud-scorer-us-central1">unhealthy<`,
		`class="region active" id="region-fraud-scorer-us-east1"`, "done &lt;b&gt;", "last 60 min",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("page lacks %s", want)
		}
	}
	if bytes.Contains(body, []byte("<script")) {
		t.Error("the page carries a script")
	}
	// us-central1 has no history: its sparklines say so.
	if !bytes.Contains(body, []byte(`id="share-fraud-scorer-us-central1"`)) || bytes.Count(body, []byte(": no data</title>")) != 2 {
		t.Errorf("a region without history should show two no-data sparklines")
	}
}

// The journal, when the daemon keeps one, is the source of "what happened": newest first, each
// entry told in explain's sentence, linked to its /journal entry; a service without entries
// keeps its state's events.
func TestPageEventsFromJournal(t *testing.T) {
	entries := []journal.Entry{
		{ID: "7", At: pageNow, Service: "fraud-scorer", Kind: failover.EventTransition, From: "healthy", To: "suspect", Reason: "r1"},
		{ID: "8", At: pageNow.Add(time.Second), Service: "fraud-scorer", Kind: failover.EventFailoverStarted, Region: "us-east1", Reason: "r2"},
	}
	got := pageEventsFromJournal(entries, 8)
	if len(got) != 2 || got[0].ID != "8" || got[0].Subject != "us-east1" || got[1].Subject != "healthy → suspect" {
		t.Fatalf("events %+v: want the two entries newest first", got)
	}
	if got[0].Reason != journal.Sentence(entries[1]) || got[0].Class != classWarn {
		t.Errorf("entry told as %q (class %q), want %q (warn)", got[0].Reason, got[0].Class, journal.Sentence(entries[1]))
	}
	if n := len(pageEventsFromJournal(entries, 1)); n != 1 {
		t.Errorf("limit 1 gave %d entries", n)
	}
	st := api.Status{Time: pageNow, Services: []api.ServiceStatus{
		{Name: "fraud-scorer", State: failover.State{State: failover.Suspect, Events: []failover.Event{{At: pageNow, Kind: failover.EventPaused, Reason: "from-state"}}}},
		{Name: "other", State: failover.State{State: failover.Healthy, Events: []failover.Event{{At: pageNow, Kind: failover.EventPaused, Reason: "other-state"}}}},
	}}
	p := buildPage(st, pageNow, map[string][]pageEvent{"fraud-scorer": got, "other": nil})
	if evs := p.Services[0].Events; len(evs) != 2 || evs[0].ID != "8" {
		t.Errorf("fraud-scorer shows %+v, want its journal", evs)
	}
	if evs := p.Services[1].Events; len(evs) != 1 || evs[0].Reason != "other-state" {
		t.Errorf("other shows %+v, want its state's events (no journal entries)", evs)
	}
	rec := httptest.NewRecorder()
	renderStatusPage(rec, st, map[string][]pageEvent{"fraud-scorer": got})
	if body := rec.Body.String(); !strings.Contains(body, `href="journal?service=fraud-scorer&amp;id=8"`) {
		t.Errorf("the page does not link entry 8 to /journal")
	}
}
