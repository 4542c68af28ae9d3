// Package fakevertex is an in-process fake of Vertex AI's EndpointService and of the
// google.longrunning Operations service (gRPC, google.cloud.aiplatform.v1). The real
// cloud.google.com/go/aiplatform EndpointClient reaches it through client options only.
//
// One server serves every region: the location in a resource name
// (projects/P/locations/L/endpoints/E) decides which simulated region a call hits, and
// SetLocationDown makes every call on that location's resources fail with UNAVAILABLE.
//
// Implemented: GetEndpoint, ListEndpoints (paging), UpdateEndpoint (traffic_split,
// display_name, description, labels; etag checked, ABORTED on mismatch as Vertex AI answers;
// FAILED_PRECONDITION for other conditions, e.g. SetBusy; SetOmitEtag serves endpoints without
// an etag),
// MutateDeployedModel (long-running; min/max replica counts; done once new replicas are ready
// on the injected clock), and Operations Get/List/Wait/Delete/Cancel. Replicas: raising
// min_replica_count provisions the missing replicas, ready after SetScaleUpTime plus the
// jitter SetProvisioning draws, or never (a stock-out: the operation ends in
// RESOURCE_EXHAUSTED and min/max go back). Without an autoscaler lowering the minimum removes
// replicas at once; with one (SetAutoscaled, driven through Autoscale by the world) replicas
// between min and max are the autoscaler's. The ready count is shown as the deployed model's
// status.available_replica_count. Writes logs every accepted mutation. Not implemented: CreateEndpoint, DeleteEndpoint, DeployModel, UndeployModel,
// list filters and read masks.
package fakevertex

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	aiplatformpb "cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	longrunningpb "cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/clock"
)

// DefaultScaleUpTime is how long new replicas take to become ready unless SetScaleUpTime says
// otherwise.
const DefaultScaleUpTime = 3 * time.Minute

// DefaultMachineType is the machine type the fake puts in deployed models' machine_spec.
const DefaultMachineType = "n1-standard-4"

// DeployedModelSpec describes a model deployed on an endpoint created with AddEndpoint.
type DeployedModelSpec struct {
	ID                       string
	MinReplicas, MaxReplicas int32
	TrafficPercent           int32
}

// Server is the fake EndpointService (and, through Register, Operations). Safe for concurrent
// use.
type Server struct {
	aiplatformpb.UnimplementedEndpointServiceServer

	clk clock.Clock

	mu         sync.Mutex
	scaleUp    time.Duration
	provHook   Provisioning
	autoscaled bool
	writes     []Write
	down       map[string]bool
	fault      func(method string) error
	calls      map[string]int
	eps        map[string]*endpoint // by resource name
	ops        map[string]*operation
	opSeq      int
	etagSeed   int
	busy       map[string]string // endpoint name -> why it refuses writes (FAILED_PRECONDITION)
	noEtag     bool
}

type endpoint struct {
	pb     *aiplatformpb.Endpoint // DeployedModels and TrafficSplit included
	models map[string]*replicas
}

// replicas tracks one deployed model's replicas on the clock: those ready, and batches being
// provisioned (by a MutateDeployedModel that raised the minimum, or by the autoscaler).
type replicas struct {
	ready int32
	prov  []provision // in order of at
}

// provision is a batch of replicas that become ready at at, or fail then (a stock-out: the
// replicas never come; a mutation's minimum and maximum go back to what they were).
type provision struct {
	n        int32
	at       time.Time
	stockout bool
	// set for a mutation's batch: the counts to restore on a stock-out
	dm             *aiplatformpb.DeployedModel
	newMin         int32
	oldMin, oldMax int32
}

// settle moves the batches due at now to ready (or drops them on a stock-out).
func (r *replicas) settle(now time.Time) {
	n := 0
	for _, p := range r.prov {
		if now.Before(p.at) {
			r.prov[n] = p
			n++
			continue
		}
		if !p.stockout {
			r.ready += p.n
			continue
		}
		if dr := p.dm.GetDedicatedResources(); dr != nil && dr.GetMinReplicaCount() == p.newMin {
			dr.MinReplicaCount, dr.MaxReplicaCount = p.oldMin, p.oldMax
		}
	}
	clear(r.prov[n:])
	r.prov = r.prov[:n]
}

// allocated is ready plus provisioning replicas (stock-outs included: nobody knows yet).
func (r *replicas) allocated() int32 {
	a := r.ready
	for _, p := range r.prov {
		a += p.n
	}
	return a
}

// paid is ready plus provisioning replicas that will come (a stock-out gets no machine).
func (r *replicas) paid() int32 {
	a := r.ready
	for _, p := range r.prov {
		if !p.stockout {
			a += p.n
		}
	}
	return a
}

// shrink drops replicas down to target at once: provisioning batches first (newest first),
// then ready ones.
func (r *replicas) shrink(target int32) {
	for len(r.prov) > 0 && r.allocated() > target {
		last := &r.prov[len(r.prov)-1]
		excess := r.allocated() - target
		if last.n <= excess {
			r.prov = r.prov[:len(r.prov)-1]
			continue
		}
		last.n -= excess
	}
	if r.ready > target {
		r.ready = max(target, 0)
	}
}

// add appends a batch, keeping the list in order of at.
func (r *replicas) add(p provision) {
	i := len(r.prov)
	for i > 0 && r.prov[i-1].at.After(p.at) {
		i--
	}
	r.prov = slices.Insert(r.prov, i, p)
}

type operation struct {
	name     string
	location string
	created  time.Time
	doneAt   time.Time
	resp     *aiplatformpb.MutateDeployedModelResponse
	err      *status.Status // set by CancelOperation
	// stockout: the operation ends at doneAt with RESOURCE_EXHAUSTED instead of a response.
	stockout bool
}

// Provisioning draws one scale-up: extra time beyond the scale-up time, and whether it fails
// as a stock-out. The world installs it; it must be safe for concurrent use.
type Provisioning func() (jitter time.Duration, stockout bool)

// Write is one accepted mutation, as it reached the fake: the ground truth of what a policy did.
type Write struct {
	// At is the fake's clock time of the write.
	At                                             time.Time
	Project, Location, EndpointID, DeployedModelID string
	// Kind is WriteReplicas (MutateDeployedModel) or WriteTrafficSplit (UpdateEndpoint with
	// traffic_split in its mask).
	Kind                     string
	MinReplicas, MaxReplicas int32
	Split                    map[string]int32
}

// Write kinds.
const (
	WriteReplicas     = "replicas"
	WriteTrafficSplit = "traffic-split"
)

// Writes returns a copy of every accepted mutation, in order.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Write, len(s.writes))
	for i, w := range s.writes {
		w.Split = maps.Clone(w.Split)
		out[i] = w
	}
	return out
}

// SetProvisioning installs f, drawn for every scale-up (mutation or autoscaler); nil: no
// jitter, no stock-out.
func (s *Server) SetProvisioning(f Provisioning) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.provHook = f
}

// drawLocked draws a scale-up's delay and fate.
func (s *Server) drawLocked() (time.Duration, bool) {
	if s.provHook == nil {
		return s.scaleUp, false
	}
	j, out := s.provHook()
	return s.scaleUp + j, out
}

// ReplicaState is a deployed model's replicas at the clock's now.
type ReplicaState struct {
	Min, Max int32
	// Ready replicas serve; Allocated adds those provisioning (the ones that will come: a
	// stock-out gets no machine and is not paid for).
	Ready, Allocated int32
}

// ReplicaState reports a deployed model's replicas now (zeros for an unknown model).
func (s *Server) ReplicaState(project, location, endpointID, deployedModelID string) ReplicaState {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[EndpointName(project, location, endpointID)]
	if !ok {
		return ReplicaState{}
	}
	r, ok := ep.models[deployedModelID]
	if !ok {
		return ReplicaState{}
	}
	r.settle(s.clk.Now())
	dr := findModel(ep.pb, deployedModelID).GetDedicatedResources()
	return ReplicaState{Min: dr.GetMinReplicaCount(), Max: dr.GetMaxReplicaCount(), Ready: r.ready, Allocated: r.paid()}
}

// SetAutoscaled tells the fake that an autoscaler (the world, through Autoscale) manages the
// replicas between min and max: lowering the minimum then leaves the replicas to it instead of
// removing them at once.
func (s *Server) SetAutoscaled(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoscaled = on
}

// Autoscale is Vertex AI's autoscaler acting on a deployed model: it wants want replicas
// (clamped to [min, max]). More than allocated starts a batch (ready after the scale-up time
// plus the drawn jitter, or a stock-out); fewer removes replicas at once (the caller applies the
// scale-down delay). It reports whether anything changed.
func (s *Server) Autoscale(project, location, endpointID, deployedModelID string, want int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[EndpointName(project, location, endpointID)]
	if !ok {
		return false
	}
	r, ok := ep.models[deployedModelID]
	if !ok {
		return false
	}
	now := s.clk.Now()
	r.settle(now)
	dr := findModel(ep.pb, deployedModelID).GetDedicatedResources()
	want = min(max(want, dr.GetMinReplicaCount()), max(dr.GetMaxReplicaCount(), dr.GetMinReplicaCount()))
	switch a := r.allocated(); {
	case want > a:
		d, out := s.drawLocked()
		r.add(provision{n: want - a, at: now.Add(d), stockout: out})
	case want < a:
		r.shrink(want)
	default:
		return false
	}
	return true
}

// New returns an empty server on clk.
func New(clk clock.Clock) *Server {
	return &Server{
		clk:     clk,
		scaleUp: DefaultScaleUpTime,
		down:    map[string]bool{},
		calls:   map[string]int{},
		eps:     map[string]*endpoint{},
		ops:     map[string]*operation{},
	}
}

// Register registers the EndpointService and the longrunning Operations service on g (the
// client's Operation.Wait/Poll go through Operations/GetOperation).
func (s *Server) Register(g *grpc.Server) {
	aiplatformpb.RegisterEndpointServiceServer(g, s)
	longrunningpb.RegisterOperationsServer(g, &opsServer{s: s})
}

// EndpointName returns projects/{project}/locations/{location}/endpoints/{endpoint}.
func EndpointName(project, location, endpointID string) string {
	return fmt.Sprintf("projects/%s/locations/%s/endpoints/%s", project, location, endpointID)
}

// AddEndpoint creates or replaces an endpoint with the given deployed models, all replicas
// ready. The traffic split is taken from the specs' TrafficPercent (zero entries omitted).
func (s *Server) AddEndpoint(project, location, endpointID, displayName string, models []DeployedModelSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	name := EndpointName(project, location, endpointID)
	ep := &endpoint{
		pb: &aiplatformpb.Endpoint{
			Name:         name,
			DisplayName:  displayName,
			TrafficSplit: map[string]int32{},
			CreateTime:   timestamppb.New(now),
			UpdateTime:   timestamppb.New(now),
		},
		models: map[string]*replicas{},
	}
	for _, m := range models {
		ep.pb.DeployedModels = append(ep.pb.DeployedModels, &aiplatformpb.DeployedModel{
			Id:          m.ID,
			Model:       fmt.Sprintf("projects/%s/locations/%s/models/%s", project, location, m.ID),
			DisplayName: m.ID,
			CreateTime:  timestamppb.New(now),
			PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{DedicatedResources: &aiplatformpb.DedicatedResources{
				MachineSpec:     &aiplatformpb.MachineSpec{MachineType: DefaultMachineType},
				MinReplicaCount: m.MinReplicas,
				MaxReplicaCount: m.MaxReplicas,
			}},
		})
		ep.models[m.ID] = &replicas{ready: m.MinReplicas}
		if m.TrafficPercent != 0 {
			ep.pb.TrafficSplit[m.ID] = m.TrafficPercent
		}
	}
	s.touchLocked(ep, now)
	s.eps[name] = ep
}

// touchLocked records a mutation: new etag and update time.
func (s *Server) touchLocked(ep *endpoint, now time.Time) {
	s.etagSeed++
	sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(ep.pb.GetName()), uint64(s.etagSeed)))
	ep.pb.Etag = base64.RawURLEncoding.EncodeToString(sum[:9])
	ep.pb.UpdateTime = timestamppb.New(now)
}

// SetScaleUpTime sets how long new replicas take to become ready (applies to later mutations).
func (s *Server) SetScaleUpTime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scaleUp = d
}

// SetLocationDown makes every call on a resource in location fail with UNAVAILABLE (or
// restores it).
func (s *Server) SetLocationDown(location string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down {
		s.down[location] = true
	} else {
		delete(s.down, location)
	}
}

// SetFault installs f: a non-nil error (a gRPC status error) for a method name such as
// "UpdateEndpoint" or "GetOperation" fails the call with it. nil removes the fault.
func (s *Server) SetFault(f func(method string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetBusy makes writes to an endpoint (UpdateEndpoint, MutateDeployedModel) fail with
// FAILED_PRECONDITION and why in the message, as Vertex AI answers while another operation (a
// model deployment by someone else) is in progress on the endpoint: a condition that is not an
// etag mismatch. An empty why clears it.
func (s *Server) SetBusy(project, location, endpointID, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy == nil {
		s.busy = map[string]string{}
	}
	name := fmt.Sprintf("projects/%s/locations/%s/endpoints/%s", project, location, endpointID)
	if why == "" {
		delete(s.busy, name)
		return
	}
	s.busy[name] = why
}

// SetOmitEtag makes GetEndpoint and ListEndpoints return endpoints without an etag (the field is
// optional in the API); an UpdateEndpoint without an etag is then a blind overwrite.
func (s *Server) SetOmitEtag(omit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noEtag = omit
}

// busyLocked returns the FAILED_PRECONDITION error of a busy endpoint, or nil.
func (s *Server) busyLocked(name string) error {
	if why, ok := s.busy[name]; ok {
		return status.Errorf(codes.FailedPrecondition, "The Endpoint %s cannot be modified: %s.", name, why)
	}
	return nil
}

// outLocked is the copy of an endpoint a read returns.
func (s *Server) outLocked(ep *endpoint) *aiplatformpb.Endpoint {
	out := s.viewLocked(ep)
	if s.noEtag {
		out.Etag = ""
	}
	return out
}

// Calls counts calls per method name (EndpointService and Operations methods), failed ones
// included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Replicas reports a deployed model's min and max replica counts and how many replicas are
// ready at the clock's now. Unknown models report zeros.
func (s *Server) Replicas(project, location, endpointID, deployedModelID string) (minReplicas, maxReplicas, ready int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[EndpointName(project, location, endpointID)]
	if !ok {
		return 0, 0, 0
	}
	r, ok := ep.models[deployedModelID]
	if !ok {
		return 0, 0, 0
	}
	r.settle(s.clk.Now())
	dr := findModel(ep.pb, deployedModelID).GetDedicatedResources()
	return dr.GetMinReplicaCount(), dr.GetMaxReplicaCount(), r.ready
}

// viewLocked settles every deployed model's replicas at now and writes them to the status the
// API shows (status.available_replica_count), then returns a deep copy of the endpoint.
func (s *Server) viewLocked(ep *endpoint) *aiplatformpb.Endpoint {
	now := s.clk.Now()
	for _, dm := range ep.pb.GetDeployedModels() {
		r, ok := ep.models[dm.GetId()]
		if !ok {
			continue
		}
		r.settle(now)
		if dm.Status == nil || dm.Status.AvailableReplicaCount != r.ready {
			dm.Status = &aiplatformpb.DeployedModel_Status{AvailableReplicaCount: r.ready, LastUpdateTime: timestamppb.New(now)}
		}
	}
	return proto.Clone(ep.pb).(*aiplatformpb.Endpoint)
}

// TrafficSplit returns a copy of an endpoint's traffic split (nil if it does not exist).
func (s *Server) TrafficSplit(project, location, endpointID string) map[string]int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[EndpointName(project, location, endpointID)]
	if !ok {
		return nil
	}
	return maps.Clone(ep.pb.GetTrafficSplit())
}

// Endpoint returns a deep copy of an endpoint as GetEndpoint would.
func (s *Server) Endpoint(project, location, endpointID string) (*aiplatformpb.Endpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[EndpointName(project, location, endpointID)]
	if !ok {
		return nil, false
	}
	return s.viewLocked(ep), true
}

func findModel(ep *aiplatformpb.Endpoint, id string) *aiplatformpb.DeployedModel {
	for _, m := range ep.GetDeployedModels() {
		if m.GetId() == id {
			return m
		}
	}
	return nil
}

// parseName splits a resource name of the form projects/P/locations/L/<collection>/ID[/...].
func parseEndpointName(name string) (project, location, id string, err error) {
	p := strings.Split(name, "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "locations" || p[4] != "endpoints" || p[1] == "" || p[3] == "" || p[5] == "" {
		return "", "", "", status.Errorf(codes.InvalidArgument, "invalid endpoint name %q: want projects/{project}/locations/{location}/endpoints/{endpoint}", name)
	}
	return p[1], p[3], p[5], nil
}

func parseParent(parent string) (project, location string, err error) {
	p := strings.Split(parent, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "locations" || p[1] == "" || p[3] == "" {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid parent %q: want projects/{project}/locations/{location}", parent)
	}
	return p[1], p[3], nil
}

// begin counts a call, then applies the location outage and the injected fault.
func (s *Server) begin(method, location string) error {
	s.mu.Lock()
	s.calls[method]++
	down := location != "" && s.down[location]
	f := s.fault
	s.mu.Unlock()
	if down {
		return status.Errorf(codes.Unavailable, "The service is currently unavailable in %s.", location)
	}
	if f != nil {
		return f(method)
	}
	return nil
}

// locationOf extracts the location of any resource name containing /locations/L.
func locationOf(name string) string {
	p := strings.Split(name, "/")
	for i := 0; i+1 < len(p); i++ {
		if p[i] == "locations" {
			return p[i+1]
		}
	}
	return ""
}

// GetEndpoint implements EndpointService.
func (s *Server) GetEndpoint(ctx context.Context, req *aiplatformpb.GetEndpointRequest) (*aiplatformpb.Endpoint, error) {
	if err := s.begin("GetEndpoint", locationOf(req.GetName())); err != nil {
		return nil, err
	}
	if _, _, _, err := parseEndpointName(req.GetName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Endpoint %s is not found.", req.GetName())
	}
	return s.outLocked(ep), nil
}

// DefaultListPageSize is the ListEndpoints page size when the request leaves it at 0.
const DefaultListPageSize = 100

// ListEndpoints implements EndpointService, with opaque page tokens bound to the parent.
func (s *Server) ListEndpoints(ctx context.Context, req *aiplatformpb.ListEndpointsRequest) (*aiplatformpb.ListEndpointsResponse, error) {
	if err := s.begin("ListEndpoints", locationOf(req.GetParent())); err != nil {
		return nil, err
	}
	if _, _, err := parseParent(req.GetParent()); err != nil {
		return nil, err
	}
	if req.GetFilter() != "" {
		return nil, status.Error(codes.Unimplemented, "fakevertex: ListEndpoints filter is not implemented")
	}
	if req.GetPageSize() < 0 {
		return nil, status.Error(codes.InvalidArgument, "page_size must not be negative")
	}
	offset := 0
	if tok := req.GetPageToken(); tok != "" {
		prefix := req.GetParent() + "#"
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, convErr := strconv.Atoi(strings.TrimPrefix(string(b), prefix))
		if err != nil || !strings.HasPrefix(string(b), prefix) || convErr != nil || n < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "invalid page_token %q", tok)
		}
		offset = n
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = DefaultListPageSize
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.eps {
		if strings.HasPrefix(n, req.GetParent()+"/endpoints/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if offset > len(names) {
		return nil, status.Error(codes.InvalidArgument, "page_token is out of range")
	}
	stop := min(offset+size, len(names))
	resp := &aiplatformpb.ListEndpointsResponse{}
	for _, n := range names[offset:stop] {
		resp.Endpoints = append(resp.Endpoints, s.outLocked(s.eps[n]))
	}
	if stop < len(names) {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s#%d", req.GetParent(), stop))
	}
	return resp, nil
}

// UpdateEndpoint implements EndpointService. Supported update_mask paths: traffic_split,
// display_name, description, labels. A non-empty etag that is not the current one is ABORTED.
func (s *Server) UpdateEndpoint(ctx context.Context, req *aiplatformpb.UpdateEndpointRequest) (*aiplatformpb.Endpoint, error) {
	in := req.GetEndpoint()
	if err := s.begin("UpdateEndpoint", locationOf(in.GetName())); err != nil {
		return nil, err
	}
	if _, _, _, err := parseEndpointName(in.GetName()); err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, status.Error(codes.InvalidArgument, "update_mask is required")
	}
	for _, p := range paths {
		switch p {
		case "traffic_split", "display_name", "description", "labels":
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update_mask path %q is not supported", p)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[in.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Endpoint %s is not found.", in.GetName())
	}
	if err := s.busyLocked(in.GetName()); err != nil {
		return nil, err
	}
	if in.GetEtag() != "" && in.GetEtag() != ep.pb.GetEtag() {
		return nil, status.Errorf(codes.Aborted, "etag mismatch: specified etag %q does not match the current etag %q", in.GetEtag(), ep.pb.GetEtag())
	}
	for _, p := range paths {
		if p != "traffic_split" {
			continue
		}
		var sum int32
		for id, pct := range in.GetTrafficSplit() {
			if findModel(ep.pb, id) == nil {
				return nil, status.Errorf(codes.InvalidArgument, "traffic_split references deployed model %q, which is not deployed on %s", id, in.GetName())
			}
			if pct < 0 || pct > 100 {
				return nil, status.Errorf(codes.InvalidArgument, "traffic_split[%q] = %d is outside 0..100", id, pct)
			}
			sum += pct
		}
		if len(ep.pb.GetDeployedModels()) > 0 && sum != 100 {
			return nil, status.Errorf(codes.InvalidArgument, "traffic_split must sum to 100, got %d", sum)
		}
	}
	for _, p := range paths {
		switch p {
		case "traffic_split":
			ep.pb.TrafficSplit = maps.Clone(in.GetTrafficSplit())
			if ep.pb.TrafficSplit == nil {
				ep.pb.TrafficSplit = map[string]int32{}
			}
		case "display_name":
			ep.pb.DisplayName = in.GetDisplayName()
		case "description":
			ep.pb.Description = in.GetDescription()
		case "labels":
			ep.pb.Labels = maps.Clone(in.GetLabels())
		}
	}
	now := s.clk.Now()
	s.touchLocked(ep, now)
	if slices.Contains(paths, "traffic_split") {
		p, loc, id, _ := parseEndpointName(in.GetName())
		s.writes = append(s.writes, Write{At: now, Project: p, Location: loc, EndpointID: id,
			Kind: WriteTrafficSplit, Split: maps.Clone(ep.pb.GetTrafficSplit())})
	}
	return s.viewLocked(ep), nil
}

// MutateDeployedModel implements EndpointService as a long-running operation. Supported
// update_mask paths: dedicated_resources.min_replica_count and
// dedicated_resources.max_replica_count. The new counts apply at once; the operation is done
// when the replicas are ready (at once when scaling down, after the scale-up time otherwise).
func (s *Server) MutateDeployedModel(ctx context.Context, req *aiplatformpb.MutateDeployedModelRequest) (*longrunningpb.Operation, error) {
	if err := s.begin("MutateDeployedModel", locationOf(req.GetEndpoint())); err != nil {
		return nil, err
	}
	_, location, _, err := parseEndpointName(req.GetEndpoint())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, status.Error(codes.InvalidArgument, "update_mask is required")
	}
	for _, p := range paths {
		switch p {
		case "dedicated_resources.min_replica_count", "dedicated_resources.max_replica_count":
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update_mask path %q is not supported", p)
		}
	}
	in := req.GetDeployedModel()
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[req.GetEndpoint()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Endpoint %s is not found.", req.GetEndpoint())
	}
	if err := s.busyLocked(req.GetEndpoint()); err != nil {
		return nil, err
	}
	dm := findModel(ep.pb, in.GetId())
	if dm == nil {
		return nil, status.Errorf(codes.NotFound, "Deployed model %q is not found on %s.", in.GetId(), req.GetEndpoint())
	}
	cur := dm.GetDedicatedResources()
	if cur == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "deployed model %q does not use dedicated resources", in.GetId())
	}
	minR, maxR := cur.GetMinReplicaCount(), cur.GetMaxReplicaCount()
	for _, p := range paths {
		switch p {
		case "dedicated_resources.min_replica_count":
			minR = in.GetDedicatedResources().GetMinReplicaCount()
		case "dedicated_resources.max_replica_count":
			maxR = in.GetDedicatedResources().GetMaxReplicaCount()
		}
	}
	if minR < 1 {
		return nil, status.Errorf(codes.InvalidArgument, "dedicated_resources.min_replica_count must be at least 1, got %d", minR)
	}
	if maxR < minR {
		return nil, status.Errorf(codes.InvalidArgument, "dedicated_resources.max_replica_count (%d) must not be less than min_replica_count (%d)", maxR, minR)
	}
	now := s.clk.Now()
	oldMin, oldMax := cur.GetMinReplicaCount(), cur.GetMaxReplicaCount()
	cur.MinReplicaCount, cur.MaxReplicaCount = minR, maxR
	r := ep.models[in.GetId()]
	r.settle(now)
	doneAt, stockout := now, false
	switch a := r.allocated(); {
	case minR > a:
		d, out := s.drawLocked()
		doneAt, stockout = now.Add(d), out
		r.add(provision{n: minR - a, at: doneAt, stockout: out, dm: dm, newMin: minR, oldMin: oldMin, oldMax: oldMax})
	case minR > r.ready:
		// Enough replicas are already provisioning (the autoscaler's): the operation waits for
		// the last of them, and shares its fate.
		last := r.prov[len(r.prov)-1]
		doneAt, stockout = last.at, last.stockout
	}
	if !s.autoscaled {
		// Without an autoscaler (SetAutoscaled) replicas follow the minimum down at once.
		r.shrink(minR)
	}
	r.shrink(maxR)
	s.touchLocked(ep, now)
	p, _, id, _ := parseEndpointName(req.GetEndpoint())
	s.writes = append(s.writes, Write{At: now, Project: p, Location: location, EndpointID: id, DeployedModelID: in.GetId(),
		Kind: WriteReplicas, MinReplicas: minR, MaxReplicas: maxR})

	s.opSeq++
	op := &operation{
		name:     fmt.Sprintf("%s/operations/%d", req.GetEndpoint(), 1000000+s.opSeq),
		location: location,
		created:  now,
		doneAt:   doneAt,
		stockout: stockout,
		resp:     &aiplatformpb.MutateDeployedModelResponse{DeployedModel: proto.Clone(dm).(*aiplatformpb.DeployedModel)},
	}
	s.ops[op.name] = op
	return s.opProtoLocked(op, now)
}

// opProtoLocked renders an operation as the client sees it at now.
func (s *Server) opProtoLocked(op *operation, now time.Time) (*longrunningpb.Operation, error) {
	done := op.err != nil || !now.Before(op.doneAt)
	updated := op.created
	if done && op.err == nil {
		updated = op.doneAt
	}
	meta, err := anypb.New(&aiplatformpb.MutateDeployedModelOperationMetadata{
		GenericMetadata: &aiplatformpb.GenericOperationMetadata{
			CreateTime: timestamppb.New(op.created),
			UpdateTime: timestamppb.New(updated),
		},
	})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "pack metadata: %v", err)
	}
	out := &longrunningpb.Operation{Name: op.name, Metadata: meta, Done: done}
	switch {
	case op.err != nil:
		out.Result = &longrunningpb.Operation_Error{Error: op.err.Proto()}
	case done && op.stockout:
		st := status.New(codes.ResourceExhausted, fmt.Sprintf(
			"The zone does not have enough resources available to fulfill the request (%s in %s is stocked out).", DefaultMachineType, op.location))
		out.Result = &longrunningpb.Operation_Error{Error: st.Proto()}
	case done:
		resp, err := anypb.New(op.resp)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "pack response: %v", err)
		}
		out.Result = &longrunningpb.Operation_Response{Response: resp}
	}
	return out, nil
}

// opsServer is the longrunning Operations service of the same fake (a separate type because
// both generated Unimplemented*Server structs cannot be embedded in one).
type opsServer struct {
	longrunningpb.UnimplementedOperationsServer
	s *Server
}

// GetOperation returns the operation's state at the clock's now.
func (o *opsServer) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	return o.get("GetOperation", req.GetName())
}

// WaitOperation returns the current state at once (the fake does not block on its clock).
func (o *opsServer) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	return o.get("WaitOperation", req.GetName())
}

func (o *opsServer) get(method, name string) (*longrunningpb.Operation, error) {
	if err := o.s.begin(method, locationOf(name)); err != nil {
		return nil, err
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	op, ok := o.s.ops[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Operation %s is not found.", name)
	}
	return o.s.opProtoLocked(op, o.s.clk.Now())
}

// ListOperations lists the operations under req.Name (an endpoint name), without paging.
func (o *opsServer) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	if err := o.s.begin("ListOperations", locationOf(req.GetName())); err != nil {
		return nil, err
	}
	if req.GetFilter() != "" {
		return nil, status.Error(codes.Unimplemented, "fakevertex: ListOperations filter is not implemented")
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	var names []string
	for n := range o.s.ops {
		if strings.HasPrefix(n, req.GetName()+"/operations/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	resp := &longrunningpb.ListOperationsResponse{}
	now := o.s.clk.Now()
	for _, n := range names {
		p, err := o.s.opProtoLocked(o.s.ops[n], now)
		if err != nil {
			return nil, err
		}
		resp.Operations = append(resp.Operations, p)
	}
	return resp, nil
}

// DeleteOperation forgets an operation.
func (o *opsServer) DeleteOperation(ctx context.Context, req *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	if err := o.s.begin("DeleteOperation", locationOf(req.GetName())); err != nil {
		return nil, err
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if _, ok := o.s.ops[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "Operation %s is not found.", req.GetName())
	}
	delete(o.s.ops, req.GetName())
	return &emptypb.Empty{}, nil
}

// CancelOperation marks a pending operation done with CANCELLED; the replica change already
// applied stays (the fake does not roll it back).
func (o *opsServer) CancelOperation(ctx context.Context, req *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	if err := o.s.begin("CancelOperation", locationOf(req.GetName())); err != nil {
		return nil, err
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	op, ok := o.s.ops[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Operation %s is not found.", req.GetName())
	}
	if o.s.clk.Now().Before(op.doneAt) && op.err == nil {
		op.err = status.New(codes.Canceled, "Operation cancelled.")
	}
	return &emptypb.Empty{}, nil
}
