package daemon

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

// TestDocEncoderMatchesMarshal: through a sequence of changes — states replaced, states
// modified in place after they were encoded (a map entry, a pointed-to struct, a slice element),
// services added and removed, the journal changed — the incremental encoding is byte for byte
// json.Marshal of the whole document, and an unchanged document is the very slice returned
// before (what commit compares with the last write).
func TestDocEncoderMatchesMarshal(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	states := map[string]failover.State{
		"svc-b": {Service: "svc-b", State: failover.Healthy, Since: t0, Primary: "us-central1", Active: "us-central1",
			Baselines: map[string]float64{"us-central1": 0.01}},
		"svc-a": {Service: "svc-a", State: failover.FailedOver, Since: t0, Primary: "us-central1", Active: "europe-west4",
			Failovers: []time.Time{t0}, Events: []failover.Event{{At: t0, Service: "svc-a", Kind: "transition", Region: "us-central1"}},
			LastShift: &failover.Shift{Kind: "failover", From: "us-central1", To: "europe-west4", Started: t0},
			Practice:  &failover.Practice{Since: t0}},
		// HTML-escaped by json.Marshal, key and value alike.
		"svc-<&>": {Service: "svc-<&>", State: failover.Healthy, Reason: "a < b & c"},
	}
	journal := []byte(`{"next":1,"entries":[]}`)
	var e docEncoder
	check := func(step string) []byte {
		t.Helper()
		got, err := e.encode(states, journal)
		if err != nil {
			t.Fatalf("%s: encode: %v", step, err)
		}
		want, err := json.Marshal(documentOut{Version: 1, Services: states, Journal: journal})
		if err != nil {
			t.Fatalf("%s: marshal: %v", step, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: incremental encoding differs from json.Marshal:\n got %s\nwant %s", step, got, want)
		}
		return got
	}
	first := check("first")
	firstCopy := bytes.Clone(first)
	if again := check("unchanged"); &again[0] != &first[0] {
		t.Errorf("unchanged: the document was reassembled; want the same slice")
	}

	// In place: the encoder's copy must not share what the live states hold.
	states["svc-b"].Baselines["us-central1"] = 0.02
	changed := check("baseline changed in place")
	if &changed[0] == &first[0] {
		t.Errorf("changed in place: got the previous slice")
	}
	check("unchanged")
	if !bytes.Equal(first, firstCopy) {
		t.Fatalf("the slice returned earlier (held as the last write) was modified")
	}
	states["svc-a"].Practice.LastResult = "succeeded"
	check("practice changed in place")
	states["svc-a"].LastShift.Completed = t0.Add(time.Minute)
	check("last shift changed in place")
	states["svc-a"].Events[0].Code = "active-unhealthy"
	check("event changed in place")

	st := states["svc-a"]
	st.Events = append(st.Events, failover.Event{At: t0.Add(time.Minute), Service: "svc-a", Kind: "command"})
	states["svc-a"] = st
	check("event appended")
	states["svc-c"] = failover.State{Service: "svc-c", State: failover.Healthy}
	check("service added")
	delete(states, "svc-b")
	check("service removed")
	// A state that cannot be encoded fails the call; what changed with it is written by the
	// next call that succeeds.
	st = states["svc-c"]
	st.Baselines = map[string]float64{"us-east1": math.NaN()}
	states["svc-c"] = st
	states["svc-a"].Practice.LastReason = "changed in the failing call"
	if _, err := e.encode(states, journal); err == nil {
		t.Fatal("NaN baseline: encode succeeded; json.Marshal refuses NaN")
	}
	st.Baselines = nil
	states["svc-c"] = st
	check("after a failed call")
	journal = []byte(`{"next":2,"entries":[{"seq":1}]}`)
	check("journal changed")
	journal = nil
	check("journal gone")
	clear(states)
	check("no services")
}

// TestSameState: sameState agrees with reflect.DeepEqual on states that differ in one field at a
// time (through pointers, slices, maps and times), and finds a deep copy the same.
func TestSameState(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	base := func() failover.State {
		return failover.State{Service: "s", State: failover.FailedOver, Since: t0, Primary: "a", Active: "b",
			Failovers: []time.Time{t0}, Completed: 1, Events: []failover.Event{{At: t0, Service: "s", Kind: "transition"}},
			LastShift: &failover.Shift{Kind: "failover", From: "a", To: "b", Started: t0},
			Baselines: map[string]float64{"a": 0.01, "b": 0.02}, Practice: &failover.Practice{Since: t0},
			Tried: []string{"c"}}
	}
	for name, change := range map[string]func(*failover.State){
		"nothing":              func(*failover.State) {},
		"a string":             func(s *failover.State) { s.Reason = "x" },
		"an int":               func(s *failover.State) { s.Completed++ },
		"a time":               func(s *failover.State) { s.Since = s.Since.Add(time.Nanosecond) },
		"a time's location":    func(s *failover.State) { s.Since = s.Since.In(time.FixedZone("X", 0)) },
		"a slice element":      func(s *failover.State) { s.Failovers[0] = t0.Add(time.Second) },
		"a slice's length":     func(s *failover.State) { s.Tried = append(s.Tried, "d") },
		"nil versus empty":     func(s *failover.State) { s.Helpers = []failover.Helper{} },
		"a nested struct":      func(s *failover.State) { s.Events[0].Code = "x" },
		"through a pointer":    func(s *failover.State) { s.LastShift.Emergency = true },
		"a pointer set":        func(s *failover.State) { s.Warm = &failover.Warm{Region: "c"} },
		"a pointer cleared":    func(s *failover.State) { s.Practice = nil },
		"a map value":          func(s *failover.State) { s.Baselines["a"] = 0.5 },
		"a map key":            func(s *failover.State) { delete(s.Baselines, "a"); s.Baselines["c"] = 0.01 },
		"a map cleared to nil": func(s *failover.State) { s.Baselines = nil },
		"deep in a pointer":    func(s *failover.State) { s.Practice.Run = &failover.PracticeRun{ID: "r"} },
	} {
		a, b := base(), base()
		change(&b)
		want := reflect.DeepEqual(a, b)
		if got := sameState(&a, &b); got != want {
			t.Errorf("%s: sameState = %v, reflect.DeepEqual = %v", name, got, want)
		}
		if c := deepCopy(b); !sameState(&b, &c) {
			t.Errorf("%s: a deep copy is not the same", name)
		}
	}
}
