package scenario

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// TestProbeBlipsAfterEmergencyShiftManySeeds runs scenarios/probe-blips-after-emergency-shift.yaml
// over many seeds, with the demo's 30m cooldown and with a 1m one, probes on their own schedule
// (issue 16, item 1): a probe blip on the new region right after the emergency shift, while its
// metric window still holds the shift's overload, must not page Blocked (30m cooldown) nor fail
// over a second time (1m cooldown).
func TestProbeBlipsAfterEmergencyShiftManySeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("many simulated outages: skipped in -short")
	}
	short := filepath.Join(t.TempDir(), "short-cooldown.yaml")
	demo := string(config.DemoYAML)
	if !strings.Contains(demo, "cooldown: 30m") {
		t.Fatal("the demo config no longer has the cooldown this test shortens")
	}
	if err := os.WriteFile(short, []byte(strings.Replace(demo, "cooldown: 30m", "cooldown: 1m", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, variant := range []struct {
		name   string
		config string
		seeds  int64
	}{{"cooldown-30m", "", 12}, {"cooldown-1m", short, 8}} {
		for seed := int64(1); seed <= variant.seeds; seed++ {
			sc, err := ParseFile(filepath.Join(corpusDir, "probe-blips-after-emergency-shift.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			sc.Seed = seed
			if variant.config != "" {
				sc.Config = variant.config
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			rep, err := Run(ctx, sc, Options{Policy: PolicyDrwatchd})
			cancel()
			if err != nil {
				t.Fatalf("%s seed %d: %v", variant.name, seed, err)
			}
			for _, e := range rep.Expectations {
				if !e.OK {
					t.Errorf("%s seed %d: %s: want %s, got %s", variant.name, seed, e.Name, e.Want, e.Got)
				}
			}
			for _, ev := range rep.Events {
				if ev.Kind == "blocked" || (ev.Kind == "failover-started" && ev.T > 700) {
					t.Errorf("%s seed %d: %s at %.0fs: %s", variant.name, seed, ev.Kind, ev.T, ev.Reason)
				}
			}
		}
	}
}
