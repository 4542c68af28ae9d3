package failover

import (
	"encoding/json"
	"testing"
)

// The typed kinds and verbs are the same strings on the wire: /status, the state file and the
// scenario reports read as before.
func TestEventAndCommandJSON(t *testing.T) {
	ev := Event{Service: "fraud", Kind: EventFailoverStarted, Code: "active-unhealthy", Reason: "r"}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"at":"0001-01-01T00:00:00Z","service":"fraud","kind":"failover-started","code":"active-unhealthy","reason":"r"}`
	if string(b) != want {
		t.Fatalf("event JSON\n got %s\nwant %s", b, want)
	}
	var c Command
	if err := json.Unmarshal([]byte(`{"verb":"abort","who":"alice"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Verb != VerbAbort {
		t.Fatalf("verb %q, want %q", c.Verb, VerbAbort)
	}
}

func TestVerbKnown(t *testing.T) {
	for _, tc := range []struct {
		verb Verb
		want bool
	}{
		{VerbPause, true}, {VerbResume, true}, {VerbFailover, true}, {VerbFailback, true}, {VerbAbort, true},
		{"reboot", false}, {"", false}, {"Pause", false}, {"pause ", false},
	} {
		if got := tc.verb.Known(); got != tc.want {
			t.Errorf("Verb(%q).Known() = %v, want %v", tc.verb, got, tc.want)
		}
	}
	if got, want := VerbList(), "pause, resume, failover, failback, abort"; got != want {
		t.Errorf("VerbList() = %q, want %q", got, want)
	}
}
