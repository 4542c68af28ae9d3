package fakecompute_test

import (
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
)

// TestWritesLogAcceptedMutationsOnly: every accepted patch and update is logged in order with
// the virtual time and the weights by backend name; a refused one (stale fingerprint) is not;
// Writes returns copies.
func TestWritesLogAcceptedMutationsOnly(t *testing.T) {
	srv, clk, c := start(t)
	if got := srv.Writes(); len(got) != 0 {
		t.Fatalf("PutURLMap (scene setup) logged: %v", got)
	}
	um, err := c.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "lb"})
	if err != nil {
		t.Fatal(err)
	}
	stale := um.GetFingerprint()
	um.DefaultRouteAction = weighted(250, 750)
	if _, err := c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb", UrlMapResource: um}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	// Refused: the fingerprint is stale now.
	um.Fingerprint = &stale
	um.DefaultRouteAction = weighted(0, 1000)
	_, err = c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb", UrlMapResource: um})
	wantHTTP(t, err, 412)
	cur, err := c.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "lb"})
	if err != nil {
		t.Fatal(err)
	}
	cur.DefaultRouteAction = weighted(0, 1000)
	if _, err := c.Update(ctxT(t), &computepb.UpdateUrlMapRequest{Project: "proj", UrlMap: "lb", UrlMapResource: cur}); err != nil {
		t.Fatal(err)
	}

	got := srv.Writes()
	want := []struct {
		at      time.Time
		weights map[string]uint32
	}{
		{t0, map[string]uint32{"us-central1": 250, "europe-west4": 750}},
		{t0.Add(time.Minute), map[string]uint32{"us-central1": 0, "europe-west4": 1000}},
	}
	if len(got) != len(want) {
		t.Fatalf("writes = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.At.Equal(w.at) || g.Project != "proj" || g.URLMap != "lb" || !reflect.DeepEqual(g.Weights, w.weights) {
			t.Errorf("write %d = %+v, want at %v weights %v", i, g, w.at, w.weights)
		}
	}
	got[0].Weights["us-central1"] = 999
	if again := srv.Writes(); again[0].Weights["us-central1"] != 250 {
		t.Errorf("Writes shares its maps: %v", again[0].Weights)
	}
}
