// Package fakecompute is an in-process fake of the Compute Engine REST API for global URL maps
// and global operations, served over net/http (httptest). The real
// cloud.google.com/go/compute/apiv1 REST clients reach it through client options only:
//
//	compute.NewUrlMapsRESTClient(ctx, option.WithEndpoint(srv.URL), option.WithoutAuthentication())
//
// Routes (paths as the Go REST client builds them):
//
//	GET   /compute/v1/projects/{project}/global/urlMaps/{urlMap}          urlMaps.get
//	PATCH /compute/v1/projects/{project}/global/urlMaps/{urlMap}          urlMaps.patch
//	PUT   /compute/v1/projects/{project}/global/urlMaps/{urlMap}          urlMaps.update
//	GET   /compute/v1/projects/{project}/global/operations/{operation}    globalOperations.get
//	POST  /compute/v1/projects/{project}/global/operations/{operation}/wait  globalOperations.wait
//
// Mutations need the current fingerprint (else HTTP 412 conditionNotMet, as the UrlMap
// documentation states), validate weighted backends (weight 0..1000, a backend service named),
// and return an Operation that goes PENDING -> RUNNING -> DONE on the clock (OpPending, then
// OpRunning; SetOpTiming), as Compute's global operations do. The URL map changes (new
// fingerprint, OnChange called with the DONE time) only when the operation is DONE: a read
// while it runs sees the old map, and a second mutation needs the old fingerprint. Operations
// are settled on every request (and URLMap), so a client that polls sees DONE as soon as the
// clock has passed it. FailNextOps makes operations end with an error (httpErrorStatusCode and
// error set; the map unchanged). Writes logs every accepted mutation when it is accepted
// (the policy's decision), with the weights it asks for. Patch merges top-level fields; defaultRouteAction is merged one level down and its
// weightedBackendServices, like pathMatchers, are replaced wholesale when present.
// Not implemented: insert, delete, list, validate, invalidateCache, and JSON null clearing.
package fakecompute

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	computepb "cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/drwatchd/drwatchd/pkg/clock"
)

// SelfLinkBase is the prefix of selfLink and targetLink values, as Compute returns them.
const SelfLinkBase = "https://www.googleapis.com/compute/v1/"

// MaxWeight is the largest weight of a weighted backend service.
const MaxWeight = 1000

// Default operation timing: PENDING for OpPending, then RUNNING for OpRunning, then DONE.
// Compute's client polls a global operation with a 1, 2, 4 s backoff (Operation.Wait); URL map
// patches are typically done within seconds (see pkg/sim/doc.go).
const (
	OpPending = 1 * time.Second
	OpRunning = 4 * time.Second
)

// Server is the fake. Safe for concurrent use.
type Server struct {
	clk clock.Clock

	mu       sync.Mutex
	maps     map[string]*computepb.UrlMap // key project/name
	ops      map[string]*computepb.Operation
	onChange []func(project, name string, um *computepb.UrlMap, at time.Time)
	fault    func(method string) int
	calls    map[string]int
	seq      uint64
	writes   []Write

	pending, running time.Duration
	inflight         []*inflight // operations not yet DONE, oldest first
	failNext         int         // HTTP status the next operations end with (0: succeed)
	failCount        int
}

// Write is one accepted URL map patch or update, as it reached the fake: the ground truth of
// what a policy did to the load balancer.
type Write struct {
	// At is the fake's clock time of the write.
	At              time.Time
	Project, URLMap string
	// Weights of the default route's weighted backend services, keyed by the backend
	// service's last path segment (empty when the default route has none).
	Weights map[string]uint32
}

// Writes returns a copy of every accepted URL map write, in order.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Write, len(s.writes))
	for i, w := range s.writes {
		w.Weights = maps.Clone(w.Weights)
		out[i] = w
	}
	return out
}

func lastSegment(ref string) string {
	ref = strings.TrimRight(ref, "/")
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// inflight is a mutation waiting for its operation to be DONE.
type inflight struct {
	op             *computepb.Operation
	project, name  string
	next           *computepb.UrlMap
	insert, doneAt time.Time
}

// New returns an empty server on clk.
func New(clk clock.Clock) *Server {
	return &Server{
		clk:   clk,
		maps:  map[string]*computepb.UrlMap{},
		ops:   map[string]*computepb.Operation{},
		calls: map[string]int{},

		pending: OpPending,
		running: OpRunning,
	}
}

// SetOpTiming sets how long new operations stay PENDING and then RUNNING (0, 0: DONE at once).
func (s *Server) SetOpTiming(pending, running time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending, s.running = max(pending, 0), max(running, 0)
}

// FailNextOps makes the next n operations end DONE with an error of HTTP status code (e.g. 500,
// 409) instead of applying their change.
func (s *Server) FailNextOps(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCount, s.failNext = n, code
}

// Settle completes every operation whose DONE time the clock has reached and applies its change.
// Requests settle on their own; the world may call it to apply changes nobody polled for.
func (s *Server) Settle() {
	s.mu.Lock()
	applied := s.settleLocked()
	hooks := slices.Clone(s.onChange)
	s.mu.Unlock()
	s.fire(hooks, applied)
}

type change struct {
	project, name string
	um            *computepb.UrlMap
	at            time.Time
}

// settleLocked advances the in-flight operations to the clock's time and returns the URL map
// changes that took effect, in order.
func (s *Server) settleLocked() []change {
	now := s.clk.Now()
	var out []change
	keep := s.inflight[:0]
	for _, f := range s.inflight {
		switch {
		case !now.Before(f.doneAt):
			f.op.Status = computepb.Operation_DONE.Enum()
			f.op.Progress = proto.Int32(100)
			f.op.StartTime = proto.String(f.insert.Add(s.pending).Format(time.RFC3339Nano))
			f.op.EndTime = proto.String(f.doneAt.Format(time.RFC3339Nano))
			if f.op.HttpErrorStatusCode != nil {
				continue // failed: the map is unchanged
			}
			cur, ok := s.maps[key(f.project, f.name)]
			if !ok {
				continue
			}
			f.next.Fingerprint = proto.String(s.fingerprintLocked(f.project, f.name))
			f.next.Name, f.next.Id, f.next.CreationTimestamp, f.next.Kind, f.next.SelfLink = cur.Name, cur.Id, cur.CreationTimestamp, cur.Kind, cur.SelfLink
			s.maps[key(f.project, f.name)] = f.next
			out = append(out, change{f.project, f.name, proto.Clone(f.next).(*computepb.UrlMap), f.doneAt})
		case !now.Before(f.insert.Add(s.pending)):
			f.op.Status = computepb.Operation_RUNNING.Enum()
			f.op.Progress = proto.Int32(50)
			f.op.StartTime = proto.String(f.insert.Add(s.pending).Format(time.RFC3339Nano))
			keep = append(keep, f)
		default:
			keep = append(keep, f)
		}
	}
	clear(s.inflight[len(keep):])
	s.inflight = keep
	return out
}

// fire calls the OnChange hooks for changes, outside the lock.
func (s *Server) fire(hooks []func(project, name string, um *computepb.UrlMap, at time.Time), changes []change) {
	for _, c := range changes {
		for _, h := range hooks {
			h(c.project, c.name, proto.Clone(c.um).(*computepb.UrlMap), c.at)
		}
	}
}

func key(project, name string) string { return project + "/" + name }

// nextLocked returns a new sequence number (used for ids and fingerprints).
func (s *Server) nextLocked() uint64 {
	s.seq++
	return s.seq
}

func (s *Server) fingerprintLocked(project, name string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", project, name, s.nextLocked()))
	return base64.StdEncoding.EncodeToString(sum[:8])
}

// PutURLMap creates or replaces a URL map (no fingerprint check, no OnChange call): the world
// uses it to set up the scene. It assigns fingerprint, id, selfLink and kind.
func (s *Server) PutURLMap(project string, um *computepb.UrlMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	um = proto.Clone(um).(*computepb.UrlMap)
	name := um.GetName()
	now := s.clk.Now()
	if old, ok := s.maps[key(project, name)]; ok {
		um.Id, um.CreationTimestamp = old.Id, old.CreationTimestamp
	} else {
		um.Id = proto.Uint64(1000000 + s.nextLocked())
		um.CreationTimestamp = proto.String(now.Format(time.RFC3339Nano))
	}
	um.Kind = proto.String("compute#urlMap")
	um.SelfLink = proto.String(SelfLinkBase + "projects/" + project + "/global/urlMaps/" + name)
	um.Fingerprint = proto.String(s.fingerprintLocked(project, name))
	s.maps[key(project, name)] = um
}

// URLMap returns a deep copy of a URL map.
func (s *Server) URLMap(project, name string) (*computepb.UrlMap, bool) {
	s.Settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	um, ok := s.maps[key(project, name)]
	if !ok {
		return nil, false
	}
	return proto.Clone(um).(*computepb.UrlMap), true
}

// OnChange registers f, called after every accepted patch or update with a copy of the new URL
// map and the clock's time (the world uses it to model propagation delays). Callbacks run on
// the request's goroutine, outside the server's lock.
func (s *Server) OnChange(f func(project, name string, um *computepb.UrlMap, at time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, f)
}

// SetFault installs f: a non-zero HTTP status (e.g. 503, 429) for a method such as
// "urlMaps.patch" fails the request with a Compute-style error. nil removes the fault.
func (s *Server) SetFault(f func(method string) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Calls counts requests per method ("urlMaps.get", "urlMaps.patch", "urlMaps.update",
// "globalOperations.get", "globalOperations.wait"), failed ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Handler returns the HTTP handler to serve (e.g. with httptest.NewServer).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// apiError is Compute's JSON error body.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Errors  []apiErrorEntry `json:"errors"`
}

type apiErrorEntry struct {
	Message      string `json:"message"`
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Location     string `json:"location,omitempty"`
	LocationType string `json:"locationType,omitempty"`
}

func reasonFor(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusNotFound:
		return "notFound"
	case http.StatusPreconditionFailed:
		return "conditionNotMet"
	case http.StatusTooManyRequests:
		return "rateLimitExceeded"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusConflict:
		return "resourceInUseByAnotherResource"
	case http.StatusServiceUnavailable:
		return "backendError"
	}
	return "backendError"
}

func writeError(w http.ResponseWriter, code int, msg string) {
	e := apiError{Error: apiErrorBody{Code: code, Message: msg, Errors: []apiErrorEntry{{
		Message: msg, Domain: "global", Reason: reasonFor(code),
	}}}}
	if code == http.StatusPreconditionFailed {
		e.Error.Errors[0].Location = "If-Match"
		e.Error.Errors[0].LocationType = "header"
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(e)
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.Marshal(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// route parses the request into a method name and path parameters.
func route(r *http.Request) (method, project, name string, ok bool) {
	p, found := strings.CutPrefix(r.URL.Path, "/compute/v1/projects/")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(p, "/")
	if len(parts) < 4 || parts[0] == "" || parts[1] != "global" || parts[3] == "" {
		return "", "", "", false
	}
	project, coll, name := parts[0], parts[2], parts[3]
	switch {
	case coll == "urlMaps" && len(parts) == 4:
		switch r.Method {
		case http.MethodGet:
			return "urlMaps.get", project, name, true
		case http.MethodPatch:
			return "urlMaps.patch", project, name, true
		case http.MethodPut:
			return "urlMaps.update", project, name, true
		}
	case coll == "operations" && len(parts) == 4 && r.Method == http.MethodGet:
		return "globalOperations.get", project, name, true
	case coll == "operations" && len(parts) == 5 && parts[4] == "wait" && r.Method == http.MethodPost:
		return "globalOperations.wait", project, name, true
	}
	return "", "", "", false
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	method, project, name, ok := route(r)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("The requested URL %s %s was not found on this server.", r.Method, r.URL.Path))
		return
	}
	s.Settle()
	s.mu.Lock()
	s.calls[method]++
	f := s.fault
	s.mu.Unlock()
	if f != nil {
		if code := f(method); code != 0 {
			writeError(w, code, fmt.Sprintf("Injected fault on %s: %s", method, http.StatusText(code)))
			return
		}
	}
	switch method {
	case "urlMaps.get":
		um, ok := s.URLMap(project, name)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("The resource 'projects/%s/global/urlMaps/%s' was not found", project, name))
			return
		}
		writeProto(w, um)
	case "urlMaps.patch", "urlMaps.update":
		s.mutate(w, r, method, project, name)
	case "globalOperations.get", "globalOperations.wait":
		s.mu.Lock()
		op, ok := s.ops[key(project, name)]
		if ok {
			op = proto.Clone(op).(*computepb.Operation)
		}
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("The resource 'projects/%s/global/operations/%s' was not found", project, name))
			return
		}
		writeProto(w, op)
	}
}

// mutate handles PATCH (merge) and PUT (replace).
func (s *Server) mutate(w http.ResponseWriter, r *http.Request, method, project, name string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Could not read the request body.")
		return
	}
	in := &computepb.UrlMap{}
	if err := protojson.Unmarshal(body, in); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid JSON payload received. %v", err))
		return
	}
	if in.Name != nil && in.GetName() != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for field 'resource.name': '%s'. The name cannot be changed.", in.GetName()))
		return
	}

	s.mu.Lock()
	cur, ok := s.maps[key(project, name)]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("The resource 'projects/%s/global/urlMaps/%s' was not found", project, name))
		return
	}
	if in.GetFingerprint() != cur.GetFingerprint() {
		s.mu.Unlock()
		msg := "Precondition Failed: the fingerprint of the URL map is missing or stale; fetch the resource and retry with its current fingerprint."
		writeError(w, http.StatusPreconditionFailed, msg)
		return
	}
	var next *computepb.UrlMap
	if method == "urlMaps.update" {
		next = proto.Clone(in).(*computepb.UrlMap)
	} else {
		next = proto.Clone(cur).(*computepb.UrlMap)
		mergePatch(next, in)
	}
	// Output-only fields are the server's.
	next.Name, next.Id, next.CreationTimestamp, next.Kind, next.SelfLink = cur.Name, cur.Id, cur.CreationTimestamp, cur.Kind, cur.SelfLink
	if err := validate(next); err != nil {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.clk.Now()
	wr := Write{At: now, Project: project, URLMap: name, Weights: map[string]uint32{}}
	for _, wb := range next.GetDefaultRouteAction().GetWeightedBackendServices() {
		wr.Weights[lastSegment(wb.GetBackendService())] += wb.GetWeight()
	}
	s.writes = append(s.writes, wr)

	id := s.nextLocked()
	opName := fmt.Sprintf("operation-%d-%d", now.UnixMilli(), id)
	ts := now.Format(time.RFC3339Nano)
	opType := "patch"
	if method == "urlMaps.update" {
		opType = "update"
	}
	op := &computepb.Operation{
		Kind:          proto.String("compute#operation"),
		Id:            proto.Uint64(id),
		Name:          proto.String(opName),
		OperationType: proto.String(opType),
		TargetLink:    next.SelfLink,
		TargetId:      next.Id,
		Status:        computepb.Operation_PENDING.Enum(),
		Progress:      proto.Int32(0),
		InsertTime:    proto.String(ts),
		User:          proto.String("drwatchd@fake"),
		SelfLink:      proto.String(SelfLinkBase + "projects/" + project + "/global/operations/" + opName),
	}
	if s.failCount > 0 {
		s.failCount--
		code := s.failNext
		op.HttpErrorStatusCode = proto.Int32(int32(code))
		op.HttpErrorMessage = proto.String(http.StatusText(code))
		op.Error = &computepb.Error{Errors: []*computepb.Errors{{
			Code:    proto.String("RESOURCE_OPERATION_FAILED"),
			Message: proto.String(fmt.Sprintf("Operation %s on url map %s failed (injected).", opName, name)),
		}}}
	}
	s.ops[key(project, opName)] = op
	s.inflight = append(s.inflight, &inflight{op: op, project: project, name: name, next: next,
		insert: now, doneAt: now.Add(s.pending + s.running)})
	applied := s.settleLocked() // DONE at once when the timing is zero
	out := proto.Clone(op).(*computepb.Operation)
	hooks := slices.Clone(s.onChange)
	s.mu.Unlock()

	s.fire(hooks, applied)
	writeProto(w, out)
}

// mergePatch applies the fields present in patch onto dst: top-level fields replace, except
// defaultRouteAction, whose present sub-fields replace the current ones (so
// weightedBackendServices is replaced wholesale). Output-only fields are ignored.
func mergePatch(dst, patch *computepb.UrlMap) {
	d := dst.ProtoReflect()
	patch.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Name() {
		case "fingerprint", "id", "self_link", "creation_timestamp", "kind", "name":
			return true
		case "default_route_action":
			if !d.Has(fd) {
				d.Set(fd, v)
				return true
			}
			cur := d.Mutable(fd).Message()
			v.Message().Range(func(sfd protoreflect.FieldDescriptor, sv protoreflect.Value) bool {
				cur.Set(sfd, sv)
				return true
			})
			return true
		}
		d.Set(fd, v)
		return true
	})
}

// validate checks what Compute checks for the fields the daemon uses.
func validate(um *computepb.UrlMap) error {
	check := func(where string, ra *computepb.HttpRouteAction) error {
		for i, wb := range ra.GetWeightedBackendServices() {
			if wb.GetBackendService() == "" {
				return fmt.Errorf("Invalid value for field '%s.weightedBackendServices[%d].backendService': ''. A backend service is required.", where, i)
			}
			if wb.Weight == nil {
				return fmt.Errorf("Invalid value for field '%s.weightedBackendServices[%d].weight': a weight is required.", where, i)
			}
			if wb.GetWeight() > MaxWeight {
				return fmt.Errorf("Invalid value for field '%s.weightedBackendServices[%d].weight': '%d'. Must be between 0 and %d.", where, i, wb.GetWeight(), MaxWeight)
			}
		}
		return nil
	}
	if err := check("resource.defaultRouteAction", um.GetDefaultRouteAction()); err != nil {
		return err
	}
	weighted := len(um.GetDefaultRouteAction().GetWeightedBackendServices()) > 0
	targets := 0
	for _, set := range []bool{um.DefaultService != nil && um.GetDefaultService() != "", weighted, um.GetDefaultUrlRedirect() != nil} {
		if set {
			targets++
		}
	}
	if targets > 1 {
		return fmt.Errorf("Invalid value for field 'resource': only one of defaultService, defaultUrlRedirect or defaultRouteAction.weightedBackendServices can be set.")
	}
	if targets == 0 {
		return fmt.Errorf("Invalid value for field 'resource': one of defaultService, defaultUrlRedirect or defaultRouteAction.weightedBackendServices must be set (weighted backends must not be empty).")
	}
	for i, pm := range um.GetPathMatchers() {
		where := fmt.Sprintf("resource.pathMatchers[%d]", i)
		if err := check(where+".defaultRouteAction", pm.GetDefaultRouteAction()); err != nil {
			return err
		}
		for j, pr := range pm.GetPathRules() {
			if err := check(fmt.Sprintf("%s.pathRules[%d].routeAction", where, j), pr.GetRouteAction()); err != nil {
				return err
			}
		}
		for j, rr := range pm.GetRouteRules() {
			if err := check(fmt.Sprintf("%s.routeRules[%d].routeAction", where, j), rr.GetRouteAction()); err != nil {
				return err
			}
		}
	}
	return nil
}
