package fakevertex_test

import (
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
)

// TestWritesLogAcceptedMutationsOnly: accepted MutateDeployedModel and traffic-split updates
// are logged in order with the virtual time; refused calls and label-only updates are not;
// Writes returns copies.
func TestWritesLogAcceptedMutationsOnly(t *testing.T) {
	srv, clk, c := start(t)
	const ep1 = "projects/proj/locations/us-central1/endpoints/ep1"
	const ep2 = "projects/proj/locations/europe-west4/endpoints/ep2"
	if _, err := c.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{
		Endpoint: ep2, DeployedModel: dedicated("m1", 4, 8),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}},
	}); err != nil {
		t.Fatal(err)
	}
	// Refused: min above max.
	_, err := c.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{
		Endpoint: ep2, DeployedModel: dedicated("m1", 9, 8),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}},
	})
	wantCode(t, err, codes.InvalidArgument)
	clk.Advance(time.Minute)
	if _, err := c.UpdateEndpoint(ctxT(t), &aiplatformpb.UpdateEndpointRequest{
		Endpoint:   &aiplatformpb.Endpoint{Name: ep1, TrafficSplit: map[string]int32{"m1": 60, "m2": 40}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic_split"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateEndpoint(ctxT(t), &aiplatformpb.UpdateEndpointRequest{
		Endpoint:   &aiplatformpb.Endpoint{Name: ep1, Labels: map[string]string{"a": "b"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
	}); err != nil {
		t.Fatal(err)
	}

	want := []fakevertex.Write{
		{At: t0, Project: "proj", Location: "europe-west4", EndpointID: "ep2", DeployedModelID: "m1",
			Kind: fakevertex.WriteReplicas, MinReplicas: 4, MaxReplicas: 8},
		{At: t0.Add(time.Minute), Project: "proj", Location: "us-central1", EndpointID: "ep1",
			Kind: fakevertex.WriteTrafficSplit, Split: map[string]int32{"m1": 60, "m2": 40}},
	}
	got := srv.Writes()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("writes:\n got %+v\nwant %+v", got, want)
	}
	got[1].Split["m1"] = 0
	if again := srv.Writes(); again[1].Split["m1"] != 60 {
		t.Errorf("Writes shares its maps: %v", again[1].Split)
	}
}
