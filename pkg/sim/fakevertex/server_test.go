package fakevertex_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	aiplatformpb "cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func start(t *testing.T) (*fakevertex.Server, *clock.Fake, *aiplatform.EndpointClient) {
	t.Helper()
	clk := clock.NewFake(t0)
	srv := fakevertex.New(clk)
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := aiplatform.NewEndpointClient(ctxT(t), option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	srv.AddEndpoint("proj", "us-central1", "ep1", "primary", []fakevertex.DeployedModelSpec{
		{ID: "m1", MinReplicas: 2, MaxReplicas: 4, TrafficPercent: 100},
		{ID: "m2", MinReplicas: 1, MaxReplicas: 1, TrafficPercent: 0},
	})
	srv.AddEndpoint("proj", "europe-west4", "ep2", "standby", []fakevertex.DeployedModelSpec{
		{ID: "m1", MinReplicas: 1, MaxReplicas: 8, TrafficPercent: 100},
	})
	return srv, clk, c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const ep1 = "projects/proj/locations/us-central1/endpoints/ep1"
const ep2 = "projects/proj/locations/europe-west4/endpoints/ep2"

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
}

func TestGetAndUpdateTrafficSplit(t *testing.T) {
	srv, _, c := start(t)
	ep, err := c.GetEndpoint(ctxT(t), &aiplatformpb.GetEndpointRequest{Name: ep1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.GetDeployedModels()) != 2 || ep.GetEtag() == "" {
		t.Fatalf("endpoint = %v", ep)
	}
	dr := ep.GetDeployedModels()[0].GetDedicatedResources()
	if dr.GetMachineSpec().GetMachineType() == "" || dr.GetMinReplicaCount() != 2 || dr.GetMaxReplicaCount() != 4 {
		t.Fatalf("dedicated resources = %v", dr)
	}

	// Read-modify-write with the etag.
	ep.TrafficSplit = map[string]int32{"m1": 70, "m2": 30}
	mask := &fieldmaskpb.FieldMask{Paths: []string{"traffic_split"}}
	up, err := c.UpdateEndpoint(ctxT(t), &aiplatformpb.UpdateEndpointRequest{Endpoint: ep, UpdateMask: mask})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetEtag() == ep.GetEtag() {
		t.Fatal("etag did not change on mutation")
	}
	if got := srv.TrafficSplit("proj", "us-central1", "ep1"); got["m1"] != 70 || got["m2"] != 30 {
		t.Fatalf("split = %v", got)
	}

	// The old etag is now stale: ABORTED, as Vertex AI answers an etag mismatch.
	ep.TrafficSplit = map[string]int32{"m1": 100}
	_, err = c.UpdateEndpoint(ctxT(t), &aiplatformpb.UpdateEndpointRequest{Endpoint: ep, UpdateMask: mask})
	wantCode(t, err, codes.Aborted)

	// Validation: sum, unknown model, unsupported mask path, missing mask.
	for i, req := range []*aiplatformpb.UpdateEndpointRequest{
		{Endpoint: &aiplatformpb.Endpoint{Name: ep1, TrafficSplit: map[string]int32{"m1": 60, "m2": 30}}, UpdateMask: mask},
		{Endpoint: &aiplatformpb.Endpoint{Name: ep1, TrafficSplit: map[string]int32{"m1": 50, "nope": 50}}, UpdateMask: mask},
		{Endpoint: &aiplatformpb.Endpoint{Name: ep1, TrafficSplit: map[string]int32{"m1": 100}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic_split", "deployed_models"}}},
		{Endpoint: &aiplatformpb.Endpoint{Name: ep1, TrafficSplit: map[string]int32{"m1": 100}}},
		{Endpoint: &aiplatformpb.Endpoint{Name: "projects/proj/endpoints/ep1"}, UpdateMask: mask},
	} {
		if _, err := c.UpdateEndpoint(ctxT(t), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("case %d: err = %v, want InvalidArgument", i, err)
		}
	}
	// No etag: last write wins.
	if _, err := c.UpdateEndpoint(ctxT(t), &aiplatformpb.UpdateEndpointRequest{
		Endpoint: &aiplatformpb.Endpoint{Name: ep1, TrafficSplit: map[string]int32{"m1": 100, "m2": 0}}, UpdateMask: mask,
	}); err != nil {
		t.Fatal(err)
	}
	if got := srv.TrafficSplit("proj", "us-central1", "ep1"); got["m1"] != 100 {
		t.Fatalf("split = %v", got)
	}
	_, err = c.GetEndpoint(ctxT(t), &aiplatformpb.GetEndpointRequest{Name: "projects/proj/locations/us-central1/endpoints/nope"})
	wantCode(t, err, codes.NotFound)
	if n := srv.Calls("UpdateEndpoint"); n != 8 {
		t.Fatalf("UpdateEndpoint calls = %d, want 8", n)
	}
}

func TestMutateDeployedModelLRO(t *testing.T) {
	srv, clk, c := start(t)
	srv.SetScaleUpTime(3 * time.Minute)
	op, err := c.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{
		Endpoint: ep2,
		DeployedModel: &aiplatformpb.DeployedModel{Id: "m1", PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{
			DedicatedResources: &aiplatformpb.DedicatedResources{MinReplicaCount: 4, MaxReplicaCount: 8},
		}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if op.Done() {
		t.Fatal("operation done before replicas are ready")
	}
	minR, maxR, ready := srv.Replicas("proj", "europe-west4", "ep2", "m1")
	if minR != 4 || maxR != 8 || ready != 1 {
		t.Fatalf("replicas = %d/%d ready %d, want 4/8 ready 1", minR, maxR, ready)
	}
	clk.Advance(2 * time.Minute)
	resp, err := op.Poll(ctxT(t))
	if err != nil || resp != nil || op.Done() {
		t.Fatalf("Poll before scale-up: resp %v, err %v, done %v", resp, err, op.Done())
	}
	meta, err := op.Metadata()
	if err != nil || !meta.GetGenericMetadata().GetCreateTime().AsTime().Equal(t0) {
		t.Fatalf("metadata = %v, %v", meta, err)
	}

	clk.Advance(time.Minute)
	if _, _, ready := srv.Replicas("proj", "europe-west4", "ep2", "m1"); ready != 4 {
		t.Fatalf("ready = %d after scale-up time, want 4", ready)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err = op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dr := resp.GetDeployedModel().GetDedicatedResources(); dr.GetMinReplicaCount() != 4 || resp.GetDeployedModel().GetId() != "m1" {
		t.Fatalf("response = %v", resp)
	}
	if srv.Calls("GetOperation") < 2 {
		t.Fatalf("GetOperation calls = %d", srv.Calls("GetOperation"))
	}

	// Scaling down is immediate and so is the operation; the operation can be resumed by name.
	op2, err := c.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{
		Endpoint: ep2,
		DeployedModel: &aiplatformpb.DeployedModel{Id: "m1", PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{
			DedicatedResources: &aiplatformpb.DedicatedResources{MinReplicaCount: 1, MaxReplicaCount: 2},
		}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count", "dedicated_resources.max_replica_count"}},
	})
	if err != nil || !op2.Done() {
		t.Fatalf("scale down: done %v, err %v", op2 != nil && op2.Done(), err)
	}
	if _, err := c.MutateDeployedModelOperation(op2.Name()).Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if minR, maxR, ready := srv.Replicas("proj", "europe-west4", "ep2", "m1"); minR != 1 || maxR != 2 || ready != 1 {
		t.Fatalf("replicas = %d/%d ready %d", minR, maxR, ready)
	}

	// Validation.
	for i, req := range []*aiplatformpb.MutateDeployedModelRequest{
		{Endpoint: ep2, DeployedModel: dedicated("m1", 0, 2), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}}},
		{Endpoint: ep2, DeployedModel: dedicated("m1", 3, 2), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}}},
		{Endpoint: ep2, DeployedModel: dedicated("m1", 1, 2), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.machine_spec"}}},
		{Endpoint: ep2, DeployedModel: dedicated("m1", 1, 2)},
	} {
		if _, err := c.MutateDeployedModel(ctxT(t), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("case %d: err = %v, want InvalidArgument", i, err)
		}
	}
	_, err = c.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{Endpoint: ep2, DeployedModel: dedicated("zz", 1, 2),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}}})
	wantCode(t, err, codes.NotFound)
}

func dedicated(id string, minR, maxR int32) *aiplatformpb.DeployedModel {
	return &aiplatformpb.DeployedModel{Id: id, PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{
		DedicatedResources: &aiplatformpb.DedicatedResources{MinReplicaCount: minR, MaxReplicaCount: maxR},
	}}
}

func TestLocationDownAndFaults(t *testing.T) {
	srv, _, c := start(t)
	srv.SetLocationDown("us-central1", true)
	_, err := c.GetEndpoint(ctxT(t), &aiplatformpb.GetEndpointRequest{Name: ep1})
	wantCode(t, err, codes.Unavailable)
	_, err = c.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{Endpoint: ep1, DeployedModel: dedicated("m1", 3, 4),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}}})
	wantCode(t, err, codes.Unavailable)
	// Other regions are unaffected.
	if _, err := c.GetEndpoint(ctxT(t), &aiplatformpb.GetEndpointRequest{Name: ep2}); err != nil {
		t.Fatal(err)
	}
	srv.SetLocationDown("us-central1", false)
	if _, err := c.GetEndpoint(ctxT(t), &aiplatformpb.GetEndpointRequest{Name: ep1}); err != nil {
		t.Fatal(err)
	}

	// An operation in a region that goes down cannot be polled.
	op, err := c.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{Endpoint: ep1, DeployedModel: dedicated("m1", 3, 4),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetLocationDown("us-central1", true)
	// GetOperation retries UNAVAILABLE by default: bound it with a short deadline.
	pctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err = op.Poll(pctx); err == nil {
		t.Fatal("Poll succeeded while the operation's location is down")
	}
	if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poll error = %v", err)
	}
	srv.SetLocationDown("us-central1", false)

	srv.SetFault(func(m string) error {
		if m == "UpdateEndpoint" {
			return status.Error(codes.ResourceExhausted, "quota")
		}
		return nil
	})
	_, err = c.UpdateEndpoint(ctxT(t), &aiplatformpb.UpdateEndpointRequest{Endpoint: &aiplatformpb.Endpoint{Name: ep1},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	wantCode(t, err, codes.ResourceExhausted)
}

func TestListEndpointsPaging(t *testing.T) {
	srv, _, c := start(t)
	for i := range 5 {
		srv.AddEndpoint("proj", "us-central1", fmt.Sprintf("x%d", i), "", nil)
	}
	it := c.ListEndpoints(ctxT(t), &aiplatformpb.ListEndpointsRequest{Parent: "projects/proj/locations/us-central1", PageSize: 2})
	var names []string
	for {
		ep, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, ep.GetName())
	}
	if len(names) != 6 { // ep1 + x0..x4
		t.Fatalf("names = %v", names)
	}
	if n := srv.Calls("ListEndpoints"); n != 3 {
		t.Fatalf("ListEndpoints calls = %d, want 3", n)
	}
	_, err := c.ListEndpoints(ctxT(t), &aiplatformpb.ListEndpointsRequest{Parent: "projects/proj/locations/us-central1", PageToken: "bogus"}).Next()
	wantCode(t, err, codes.InvalidArgument)
}
