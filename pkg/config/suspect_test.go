package config_test

import (
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// probe.suspect_interval: on by default (1s), 0 turns it off; negative, above the probe's
// interval or below the probe floor (1s) is an error naming the field.
func TestProbeSuspectInterval(t *testing.T) {
	if got := config.DefaultProbe().SuspectInterval.D(); got != time.Second {
		t.Errorf("default suspect_interval = %v, want 1s", got)
	}
	const path = "services[0].regions[0].probe.suspect_interval"
	for _, tc := range []struct {
		name string
		v    time.Duration
		frag string // "" when valid
	}{
		{"off", 0, ""},
		{"default", time.Second, ""},
		{"equal to the interval", 5 * time.Second, ""},
		{"negative", -time.Second, "is negative; want 0 (off)"},
		{"above the interval", 6 * time.Second, "above probe.interval (5s)"},
		{"below the floor", 200 * time.Millisecond, "below the minimum 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseMinimal(t)
			probe(c).SuspectInterval = config.Duration(tc.v)
			err := c.Validate()
			if tc.frag == "" {
				if err != nil {
					for _, e := range fieldErrors(t, err) {
						if e.Path == path {
							t.Fatalf("valid %v rejected: %v", tc.v, e)
						}
					}
				}
				return
			}
			wantPath(t, err, path, tc.frag)
		})
	}
}
