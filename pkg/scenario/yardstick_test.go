package scenario

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
)

// The seed policy reproduces the seed's execute_failover in order: the URL map 100 % to the
// first standby, then that standby scaled to its production size, then nothing more (the seed's
// loop breaks) — read from what reached the fakes, not from the policy's events.
func TestSeedPolicyFollowsTheSeedsSteps(t *testing.T) {
	sc, err := ParseFile(filepath.Join(corpusDir, "primary-hard-outage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	env, rec, pol, err := start(ctx, sc, Options{Policy: PolicySeed})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	defer pol.close()
	if _, err := drive(ctx, sc, env, rec, pol); err != nil {
		t.Fatal(err)
	}
	writes, ok := rec.urlMapWrites()
	if !ok || len(writes) != 1 {
		t.Fatalf("URL map writes %+v: want exactly one (the seed's single switch)", writes)
	}
	if w := writes[0]; w.shares["us-east1"] != 1 {
		t.Errorf("the URL map write put %v: want 100 %% on the first standby us-east1", w.shares)
	}
	var scales []fakevertex.Write
	for _, w := range env.Sim.Vertex.Writes() {
		if w.Kind == fakevertex.WriteReplicas {
			scales = append(scales, w)
		}
	}
	if len(scales) != 1 {
		t.Fatalf("Vertex AI replica writes %+v: want exactly one (the seed's scale-up)", scales)
	}
	s := scales[0]
	if s.Location != "us-east1" || s.MinReplicas != int32(rec.svc.Region("us-east1").Replicas.Production) {
		t.Errorf("scale-up %+v: want us-east1 to its production size", s)
	}
	if s.At.Before(writes[0].at) {
		t.Errorf("scaled at %v before the URL map write at %v: the seed switches first, then scales", s.At, writes[0].at)
	}
}

// Two runs of the same scenario and seed give identical reports (but for the wall time), for
// every policy, in the rough world (the one with the most randomness).
func TestRunsAreDeterministic(t *testing.T) {
	sc, err := ParseFile(filepath.Join(corpusDir, "primary-errors-30pct.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc.Duration = 30 * time.Minute
	for _, pol := range Policies {
		t.Run(pol, func(t *testing.T) {
			var out [2]bytes.Buffer
			for i := range out {
				rep, err := Run(context.Background(), sc, Options{Policy: pol, Profile: "rough"})
				if err != nil {
					t.Fatal(err)
				}
				rep.WallSeconds = 0
				if err := rep.WriteJSON(&out[i]); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
				t.Errorf("two runs of the same scenario and seed differ:\n%s\n---\n%s", out[0].String(), out[1].String())
			}
		})
	}
}
