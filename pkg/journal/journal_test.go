package journal

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

var t0 = time.Date(2026, 11, 29, 1, 2, 10, 0, time.UTC)

func ids(es []Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestAddNumbersEntriesAndNeverReusesIDs(t *testing.T) {
	var j Journal
	a := j.Add(Entry{Service: "a", At: t0})
	b := j.Add(Entry{Service: "a", At: t0})
	if a.ID != "1" || b.ID != "2" || j.Next != 3 {
		t.Fatalf("ids %s %s next %d", a.ID, b.ID, j.Next)
	}
	j.Prune(t0, Bounds{MaxEntries: 1})
	if c := j.Add(Entry{Service: "a", At: t0}); c.ID != "3" {
		t.Fatalf("after pruning the next id is %s, want 3 (never reused)", c.ID)
	}
}

func TestPruneBoundsCountPerServiceAndAge(t *testing.T) {
	var j Journal
	for i := range 5 {
		j.Add(Entry{Service: "noisy", At: t0.Add(time.Duration(i) * time.Minute)})
	}
	j.Add(Entry{Service: "quiet", At: t0})
	byAge, byCount := j.Prune(t0.Add(5*time.Minute), Bounds{MaxEntries: 2, MaxAge: time.Hour})
	if byAge != 0 || byCount != 3 {
		t.Fatalf("dropped %d by age, %d by count; want 0 and 3", byAge, byCount)
	}
	// The noisy service keeps its newest two; the quiet one is not evicted by the noisy one.
	if got := ids(j.Entries); !reflect.DeepEqual(got, []string{"4", "5", "6"}) {
		t.Fatalf("kept %v", got)
	}
	byAge, byCount = j.Prune(t0.Add(time.Hour+3*time.Minute+30*time.Second), Bounds{MaxEntries: 2, MaxAge: time.Hour})
	if byAge != 2 || byCount != 0 {
		t.Fatalf("dropped %d by age, %d by count; want 2 and 0", byAge, byCount)
	}
	if got := ids(j.Entries); !reflect.DeepEqual(got, []string{"5"}) {
		t.Fatalf("kept %v, want only the entry younger than an hour", got)
	}
}

func TestSelectFilters(t *testing.T) {
	var j Journal
	for i := range 6 {
		svc := "a"
		if i%2 == 1 {
			svc = "b"
		}
		j.Add(Entry{Service: svc, At: t0.Add(time.Duration(i) * time.Minute)})
	}
	cases := []struct {
		name string
		q    Query
		want []string
		more bool
	}{
		{"all", Query{}, []string{"1", "2", "3", "4", "5", "6"}, false},
		{"service", Query{Service: "a"}, []string{"1", "3", "5"}, false},
		{"since inclusive", Query{Since: t0.Add(2 * time.Minute)}, []string{"3", "4", "5", "6"}, false},
		{"until inclusive", Query{Until: t0.Add(time.Minute)}, []string{"1", "2"}, false},
		{"window", Query{Service: "b", Since: t0.Add(time.Minute), Until: t0.Add(4 * time.Minute)}, []string{"2", "4"}, false},
		{"limit keeps the newest", Query{Limit: 2}, []string{"5", "6"}, true},
		{"id", Query{ID: "4"}, []string{"4"}, false},
		{"relative since", Query{SinceAgo: 2 * time.Minute}.Resolve(t0.Add(5 * time.Minute)), []string{"4", "5", "6"}, false},
	}
	for _, c := range cases {
		got, more := j.Select(c.q)
		if !reflect.DeepEqual(ids(got), c.want) || more != c.more {
			t.Errorf("%s: got %v more %v, want %v more %v", c.name, ids(got), more, c.want, c.more)
		}
	}
}

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery(url.Values{"service": {"fraud-scorer"}, "since": {"2h"}, "until": {"2026-11-29T01:00:00Z"}, "limit": {"10"}})
	if err != nil {
		t.Fatal(err)
	}
	if q.Service != "fraud-scorer" || q.SinceAgo != 2*time.Hour || !q.Until.Equal(time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)) || q.Limit != 10 {
		t.Fatalf("parsed %+v", q)
	}
	bad := []struct {
		v    url.Values
		want []string
	}{
		{url.Values{"since": {"yesterday"}}, []string{`since: "yesterday" is neither an RFC 3339 time`}},
		{url.Values{"until": {"-5m"}}, []string{`until: "-5m"`}},
		{url.Values{"limit": {"0"}}, []string{`limit: "0" is not a whole number from 1 to 5000`}},
		{url.Values{"limit": {"lots"}, "servce": {"x"}}, []string{"limit:", "servce: unknown parameter (want service, since, until, limit, id)"}},
		{url.Values{"since": {"2026-11-29T02:00:00Z"}, "until": {"2026-11-29T01:00:00Z"}}, []string{"until: 2026-11-29T01:00:00Z is before since"}},
		{url.Values{"service": {"a", "b"}}, []string{"service: given 2 times"}},
	}
	for _, b := range bad {
		_, err := ParseQuery(b.v)
		if err == nil {
			t.Errorf("%v: accepted", b.v)
			continue
		}
		for _, w := range b.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", b.v, err, w)
			}
		}
	}
}

func svc() *config.Service {
	s := config.DefaultService()
	s.Name = "fraud-scorer"
	s.RPO.Target = config.Duration(15 * time.Minute)
	s.Regions = []config.Region{{Name: "europe-west4", Role: "primary"}, {Name: "us-central1", Role: "standby"}, {Name: "us-east1", Role: "standby"}}
	return &s
}

// The story of a failover, told from the entries built from the machine's events and the
// iteration's observation, says what the brief's example says.
func TestStoryTellsTheIncidentWithEvidence(t *testing.T) {
	s := svc()
	obs := failover.Observation{
		Health: map[string]health.RegionStatus{
			"europe-west4": {Verdict: health.Unhealthy, Bad: 3, ErrorRatio: 0.31, Requests: 1204, LatencyP99: 420 * time.Millisecond,
				Probe: &health.ProbeResult{OK: false, ConsecutiveFailures: 4, Status: 503}, MetricsAt: t0.Add(-2 * time.Minute)},
			"us-central1": {Verdict: health.Healthy, ErrorRatio: 0.001, Requests: 900},
			"us-east1":    {Verdict: health.Healthy, ErrorRatio: 0.001, Requests: 800},
		},
		RPO: map[string]checkpoint.RegionRPO{
			"us-central1": {Known: true, Age: 2 * time.Minute, Target: 15 * time.Minute},
			"us-east1":    {Known: true, Age: 42 * time.Minute, Target: 15 * time.Minute, Stale: true},
		},
		Weights: plan.Weights{"europe-west4": 100, "us-central1": 0, "us-east1": 0},
	}
	suspect := failover.State{State: failover.Suspect, Active: "europe-west4"}
	p := plan.Plan{ID: "p1", Kind: "failover", From: "europe-west4", To: "us-central1", Steps: []int{10, 25, 50, 75, 100}, Phase: plan.Scaling}
	failing := failover.State{State: failover.FailingOver, Active: "europe-west4", Plan: &p}
	ev := &failover.Evidence{
		Guards: []failover.Guard{{Name: "cooldown", Passed: true, Observed: "no failover yet", Limit: "30m"}},
		Candidates: []failover.Candidate{
			{Region: "us-central1", Eligible: true, Chosen: true, Reason: "healthy, rpo 2m"},
			{Region: "us-east1", Reason: "rejected: rpo stale: 42m > 15m"},
		},
	}
	var j Journal
	j.Add(FromEvent(Context{Service: s, State: suspect, Obs: obs, Now: t0}, failover.Event{At: t0, Kind: failover.EventTransition,
		From: failover.Healthy, To: failover.Suspect, Reason: "active bad"}))
	at := t0.Add(30 * time.Second)
	j.Add(FromEvent(Context{Service: s, State: failing, Obs: obs, Now: at}, failover.Event{At: at, Kind: failover.EventFailoverStarted,
		Region: "us-central1", Reason: "failover europe-west4 -> us-central1", Evidence: ev}))
	j.Add(FromAction(Context{Service: s, State: failing, Obs: obs, Now: at}, plan.Scale{Region: "us-central1", MinReplicas: 4, MaxReplicas: 8, Reason: "prepare target"}))

	// Through JSON and back, as /journal serves it.
	raw, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var back Journal
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Story(back.Entries), "\n")
	for _, want := range []string{
		"2026-11-29:",
		"01:02:10 europe-west4 became suspect: 31% errors over 1,204 requests (threshold 5%), p99 420ms (threshold 5s), 4 probes failed in a row (HTTP 503), data 2m old.",
		"01:02:40 failover from europe-west4 to us-central1 started because europe-west4 is unhealthy: 31% errors over 1,204 requests",
		"Targets: us-central1 chosen: healthy, rpo 2m (target 15m); us-east1 rejected: rpo stale: 42m > 15m.",
		"Guards: cooldown ok: no failover yet (limit 30m).",
		"01:02:40 asked to scale us-central1 to min 4 max 8 replicas: prepare target.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("story lacks %q:\n%s", want, got)
		}
	}
}
