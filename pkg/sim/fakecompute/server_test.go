package fakecompute_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	computepb "cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	bsA = "https://www.googleapis.com/compute/v1/projects/proj/global/backendServices/us-central1"
	bsB = "https://www.googleapis.com/compute/v1/projects/proj/global/backendServices/europe-west4"
)

func weighted(wa, wb uint32) *computepb.HttpRouteAction {
	return &computepb.HttpRouteAction{WeightedBackendServices: []*computepb.WeightedBackendService{
		{BackendService: proto.String(bsA), Weight: proto.Uint32(wa)},
		{BackendService: proto.String(bsB), Weight: proto.Uint32(wb)},
	}}
}

func start(t *testing.T) (*fakecompute.Server, *clock.Fake, *compute.UrlMapsClient) {
	t.Helper()
	clk := clock.NewFake(t0)
	srv := fakecompute.New(clk)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c, err := compute.NewUrlMapsRESTClient(ctxT(t), option.WithEndpoint(hs.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	srv.PutURLMap("proj", &computepb.UrlMap{
		Name:               proto.String("lb"),
		DefaultRouteAction: weighted(1000, 0),
		HostRules:          []*computepb.HostRule{{Hosts: []string{"*"}, PathMatcher: proto.String("pm")}},
		PathMatchers: []*computepb.PathMatcher{{
			Name: proto.String("pm"), DefaultRouteAction: weighted(1000, 0),
		}},
	})
	return srv, clk, c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantHTTP(t *testing.T, err error, code int) *googleapi.Error {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != code {
		t.Fatalf("error = %v, want *googleapi.Error with Code %d", err, code)
	}
	return gerr
}

func TestGetPatchWaitAndStaleFingerprint(t *testing.T) {
	srv, clk, c := start(t)
	var mu sync.Mutex
	var changes []time.Time
	srv.OnChange(func(project, name string, um *computepb.UrlMap, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if project != "proj" || name != "lb" {
			t.Errorf("OnChange(%s, %s)", project, name)
		}
		changes = append(changes, at)
	})

	um, err := c.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "lb"})
	if err != nil {
		t.Fatal(err)
	}
	if um.GetFingerprint() == "" || um.GetSelfLink() == "" || um.GetId() == 0 {
		t.Fatalf("url map = %v", um)
	}
	if w := um.GetDefaultRouteAction().GetWeightedBackendServices(); w[1].Weight == nil || w[1].GetWeight() != 0 {
		t.Fatalf("zero weight not sent explicitly: %v", w)
	}

	clk.Advance(time.Second)
	patch := &computepb.UrlMap{Fingerprint: um.Fingerprint, DefaultRouteAction: weighted(300, 700)}
	op, err := c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb", UrlMapResource: patch})
	if err != nil {
		t.Fatal(err)
	}
	// The operation goes PENDING -> RUNNING -> DONE on the clock; the map changes only at DONE.
	if got := op.Proto().GetStatus(); got != computepb.Operation_PENDING || op.Done() {
		t.Fatalf("operation right after the patch: %v, want PENDING", got)
	}
	if mid, _ := srv.URLMap("proj", "lb"); mid.GetFingerprint() != um.GetFingerprint() {
		t.Fatal("the map changed before its operation was done")
	}
	clk.Advance(fakecompute.OpPending)
	if err := op.Poll(ctxT(t)); err != nil || op.Done() || op.Proto().GetStatus() != computepb.Operation_RUNNING {
		t.Fatalf("after %s: %v (err %v), want RUNNING", fakecompute.OpPending, op.Proto().GetStatus(), err)
	}
	clk.Advance(fakecompute.OpRunning)
	if err := op.Poll(ctxT(t)); err != nil || !op.Done() {
		t.Fatalf("after %s more: %v (err %v), want DONE", fakecompute.OpRunning, op.Proto().GetStatus(), err)
	}
	if op.Proto().GetTargetLink() != um.GetSelfLink() {
		t.Fatalf("operation = %v", op.Proto())
	}
	if srv.Calls("globalOperations.get") != 2 {
		t.Fatalf("globalOperations.get calls = %d, want 2", srv.Calls("globalOperations.get"))
	}
	// The same (now stale) fingerprint is refused with 412.
	_, err = c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb",
		UrlMapResource: &computepb.UrlMap{Fingerprint: um.Fingerprint, DefaultRouteAction: weighted(0, 1000)}})
	gerr := wantHTTP(t, err, 412)
	if len(gerr.Errors) != 1 || gerr.Errors[0].Reason != "conditionNotMet" {
		t.Fatalf("error items = %+v", gerr.Errors)
	}
	// So is a missing fingerprint.
	_, err = c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb",
		UrlMapResource: &computepb.UrlMap{DefaultRouteAction: weighted(0, 1000)}})
	wantHTTP(t, err, 412)

	after, err := c.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "lb"})
	if err != nil {
		t.Fatal(err)
	}
	w := after.GetDefaultRouteAction().GetWeightedBackendServices()
	if len(w) != 2 || w[0].GetWeight() != 300 || w[1].GetWeight() != 700 {
		t.Fatalf("weights after patch = %v", w)
	}
	if after.GetFingerprint() == um.GetFingerprint() {
		t.Fatal("fingerprint did not change")
	}
	// Fields not in the patch are kept.
	if len(after.GetPathMatchers()) != 1 || len(after.GetHostRules()) != 1 {
		t.Fatalf("patch dropped other fields: %v", after)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || !changes[0].Equal(t0.Add(time.Second+fakecompute.OpPending+fakecompute.OpRunning)) {
		t.Fatalf("OnChange calls = %v", changes)
	}
}

func TestUpdateValidationFaultsAndNotFound(t *testing.T) {
	srv, clk, c := start(t)
	um, _ := srv.URLMap("proj", "lb")

	bad := []*computepb.UrlMap{
		{Fingerprint: um.Fingerprint, DefaultRouteAction: weighted(1001, 0)},
		{Fingerprint: um.Fingerprint, DefaultRouteAction: &computepb.HttpRouteAction{WeightedBackendServices: []*computepb.WeightedBackendService{{Weight: proto.Uint32(1)}}}},
		{Fingerprint: um.Fingerprint, PathMatchers: []*computepb.PathMatcher{{Name: proto.String("pm"), DefaultRouteAction: weighted(5000, 1)}}},
		{Fingerprint: um.Fingerprint, DefaultService: proto.String(bsA)}, // conflicts with weighted backends
	}
	for i, p := range bad {
		_, err := c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb", UrlMapResource: p})
		var gerr *googleapi.Error
		if !errors.As(err, &gerr) || gerr.Code != 400 {
			t.Errorf("case %d: err = %v, want 400", i, err)
		}
	}
	// An update with no routing target at all (empty weighted backends) is refused.
	_, err := c.Update(ctxT(t), &computepb.UpdateUrlMapRequest{Project: "proj", UrlMap: "lb",
		UrlMapResource: &computepb.UrlMap{Name: proto.String("lb"), Fingerprint: um.Fingerprint, DefaultRouteAction: &computepb.HttpRouteAction{}}})
	wantHTTP(t, err, 400)

	// A full update (PUT) replaces the resource.
	op, err := c.Update(ctxT(t), &computepb.UpdateUrlMapRequest{Project: "proj", UrlMap: "lb",
		UrlMapResource: &computepb.UrlMap{Name: proto.String("lb"), Fingerprint: um.Fingerprint, DefaultRouteAction: weighted(0, 1000)}})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	if err := op.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	got, _ := srv.URLMap("proj", "lb")
	if len(got.GetPathMatchers()) != 0 || got.GetDefaultRouteAction().GetWeightedBackendServices()[1].GetWeight() != 1000 {
		t.Fatalf("after update: %v", got)
	}

	_, err = c.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "nope"})
	wantHTTP(t, err, 404)

	srv.SetFault(func(m string) int {
		if m == "urlMaps.patch" {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	_, err = c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb",
		UrlMapResource: &computepb.UrlMap{Fingerprint: got.Fingerprint, DefaultRouteAction: weighted(1, 1)}})
	wantHTTP(t, err, 503)
	srv.SetFault(func(m string) int { return http.StatusTooManyRequests })
	_, err = c.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "lb"})
	wantHTTP(t, err, 429)
	srv.SetFault(nil)
	if n := srv.Calls("urlMaps.patch"); n != 5 {
		t.Fatalf("urlMaps.patch calls = %d, want 5", n)
	}
}

func TestGlobalOperationsClientAndUnknownPaths(t *testing.T) {
	srv, clk, c := start(t)
	um, _ := srv.URLMap("proj", "lb")
	op, err := c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb",
		UrlMapResource: &computepb.UrlMap{Fingerprint: um.Fingerprint, DefaultRouteAction: weighted(500, 500)}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	oc, err := compute.NewGlobalOperationsRESTClient(ctxT(t), option.WithEndpoint(hs.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	clk.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	got, err := oc.Wait(ctxT(t), &computepb.WaitGlobalOperationRequest{Project: "proj", Operation: op.Name()})
	if err != nil || got.GetStatus() != computepb.Operation_DONE {
		t.Fatalf("wait: %v, %v", got, err)
	}
	_, err = oc.Get(ctxT(t), &computepb.GetGlobalOperationRequest{Project: "proj", Operation: "operation-nope"})
	wantHTTP(t, err, 404)

	resp, err := http.Get(hs.URL + "/compute/v1/projects/proj/global/forwardingRules/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown path status = %d", resp.StatusCode)
	}
}

// A failed operation ends DONE with httpErrorStatusCode and error set, and the map is unchanged;
// the client's Poll reports the error.
func TestFailedOperation(t *testing.T) {
	srv, clk, c := start(t)
	um, _ := srv.URLMap("proj", "lb")
	srv.FailNextOps(1, http.StatusInternalServerError)
	op, err := c.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "lb",
		UrlMapResource: &computepb.UrlMap{Fingerprint: um.Fingerprint, DefaultRouteAction: weighted(0, 1000)}})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	err = op.Poll(ctxT(t))
	if !op.Done() || err == nil || op.Proto().GetHttpErrorStatusCode() != 500 {
		t.Fatalf("failed operation: done %v err %v op %v", op.Done(), err, op.Proto())
	}
	if after, _ := srv.URLMap("proj", "lb"); after.GetFingerprint() != um.GetFingerprint() {
		t.Fatal("a failed operation changed the map")
	}
}
