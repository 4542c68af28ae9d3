package gcp

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"

	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// URLMapConfig names a global URL map and the backend service of each region.
type URLMapConfig struct {
	Project string
	URLMap  string
	// Backends maps region -> backend service: a self-link, "projects/P/global/backendServices/NAME",
	// "global/backendServices/NAME" or just "NAME". Matched by the "global/backendServices/NAME"
	// (or "regions/R/backendServices/NAME") suffix.
	Backends map[string]string
}

// URLMapRouter implements traffic.Router with a global external Application Load Balancer's URL
// map (weighted backend services). The version is the URL map's fingerprint.
//
// Every weightedBackendServices list that references one of the configured backends is ours:
// defaultRouteAction, pathMatchers[].defaultRouteAction, pathMatchers[].routeRules[].routeAction
// and pathMatchers[].pathRules[].routeAction. Set writes all of them in one Patch, so they stay
// consistent; Get reports the first one (top-level defaultRouteAction first). A list of ours
// that also holds a backend not mapped to a region is refused (Permanent): writing percentages
// next to a foreign weight would not mean what the caller asked.
//
// Weights are written as percentages (0..100 out of the API's 0..1000) with zero weights sent
// explicitly; Get reads any weights as shares of their list's sum, rounded to whole percents
// that sum to 100 (largest remainder).
type URLMapRouter struct {
	client *compute.UrlMapsClient
	ops    *compute.GlobalOperationsClient
	cfg    URLMapConfig
	keys   map[string]string // backend key -> region

	// ReadTimeout bounds a Get and a Done (default 15 s); WriteTimeout bounds an Apply, its
	// read and its patch (default 30 s). Neither waits for the patch's operation.
	ReadTimeout, WriteTimeout time.Duration
	// Retry bounds in-call retries of 502/503/504 on reads (default DefaultRetry).
	Retry RetryPolicy
	// Observe, when set, is told about every call.
	Observe Observer
}

// NewURLMapRouter checks cfg and returns a router writing through c and polling its patches'
// global operations through ops.
func NewURLMapRouter(c *compute.UrlMapsClient, ops *compute.GlobalOperationsClient, cfg URLMapConfig) (*URLMapRouter, error) {
	if cfg.Project == "" || cfg.URLMap == "" || len(cfg.Backends) == 0 {
		return nil, fmt.Errorf("url map router: project, url map and backends are required")
	}
	if c == nil || ops == nil {
		return nil, fmt.Errorf("url map router: the url maps and global operations clients are required")
	}
	keys := map[string]string{}
	for region, bs := range cfg.Backends {
		k := backendKey(bs)
		if k == "" {
			return nil, fmt.Errorf("url map router: region %s: empty backend service", region)
		}
		if other, dup := keys[k]; dup {
			return nil, fmt.Errorf("url map router: regions %s and %s share backend service %s", other, region, k)
		}
		keys[k] = region
	}
	return &URLMapRouter{client: c, ops: ops, cfg: cfg, keys: keys,
		ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, Retry: DefaultRetry}, nil
}

// backendKey normalises a backend service reference to "global/backendServices/NAME" (or
// "regions/R/backendServices/NAME").
func backendKey(ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return ""
	}
	if !strings.Contains(ref, "/") {
		return "global/backendServices/" + ref
	}
	for _, scope := range []string{"/global/", "/regions/"} {
		if i := strings.LastIndex(ref, scope); i >= 0 {
			return ref[i+1:]
		}
	}
	return ref // already "global/..." or "regions/..."
}

// weightedList is one weightedBackendServices list in the map, with where it is.
type weightedList struct {
	where string
	ws    []*computepb.WeightedBackendService
}

// ours returns the weighted lists that reference a configured backend.
func (r *URLMapRouter) ours(um *computepb.UrlMap) ([]weightedList, error) {
	var all []weightedList
	add := func(where string, a *computepb.HttpRouteAction) {
		if a != nil && len(a.GetWeightedBackendServices()) > 0 {
			all = append(all, weightedList{where, a.GetWeightedBackendServices()})
		}
	}
	add("defaultRouteAction", um.GetDefaultRouteAction())
	for i, pm := range um.GetPathMatchers() {
		add(fmt.Sprintf("pathMatchers[%d].defaultRouteAction", i), pm.GetDefaultRouteAction())
		for j, rr := range pm.GetRouteRules() {
			add(fmt.Sprintf("pathMatchers[%d].routeRules[%d].routeAction", i, j), rr.GetRouteAction())
		}
		for j, pr := range pm.GetPathRules() {
			add(fmt.Sprintf("pathMatchers[%d].pathRules[%d].routeAction", i, j), pr.GetRouteAction())
		}
	}
	var out []weightedList
	for _, l := range all {
		var mine bool
		var foreign []string
		for _, w := range l.ws {
			if _, ok := r.keys[backendKey(w.GetBackendService())]; ok {
				mine = true
			} else {
				foreign = append(foreign, w.GetBackendService())
			}
		}
		if !mine {
			continue
		}
		if len(foreign) > 0 {
			return nil, errclass.Wrap(errclass.Permanent, "FOREIGN_BACKEND", fmt.Errorf(
				"url map %s: %s holds backend services not mapped to a region: %s",
				r.cfg.URLMap, l.where, strings.Join(foreign, ", ")))
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errclass.Wrap(errclass.Permanent, "NO_WEIGHTED_BACKENDS", fmt.Errorf(
			"url map %s: no weightedBackendServices reference the configured backend services", r.cfg.URLMap))
	}
	return out, nil
}

func (r *URLMapRouter) get(ctx context.Context) (um *computepb.UrlMap, err error) {
	ctx, cancel := withTimeout(ctx, r.ReadTimeout)
	defer cancel()
	start := time.Now()
	defer func() { r.Observe.observe("compute.UrlMaps.Get", start, err) }()
	um, err = r.client.Get(ctx, &computepb.GetUrlMapRequest{Project: r.cfg.Project, UrlMap: r.cfg.URLMap},
		r.Retry.callOption())
	return um, classify(err, read, fmt.Sprintf("get url map %s", r.cfg.URLMap))
}

// Get returns the split by region and the URL map's fingerprint.
func (r *URLMapRouter) Get(ctx context.Context) (plan.Weights, string, error) {
	um, err := r.get(ctx)
	if err != nil {
		return nil, "", err
	}
	lists, err := r.ours(um)
	if err != nil {
		return nil, "", err
	}
	raw := map[string]float64{}
	for region := range r.cfg.Backends {
		raw[region] = 0
	}
	for _, w := range lists[0].ws {
		raw[r.keys[backendKey(w.GetBackendService())]] += float64(w.GetWeight())
	}
	return percentages(raw), um.GetFingerprint(), nil
}

// percentages turns non-negative raw weights into whole percents summing to 100 (largest
// remainder, ties by name); all zero stays all zero.
func percentages(raw map[string]float64) plan.Weights {
	var sum float64
	names := make([]string, 0, len(raw))
	for k, v := range raw {
		sum += v
		names = append(names, k)
	}
	out := make(plan.Weights, len(raw))
	if sum <= 0 {
		for _, k := range names {
			out[k] = 0
		}
		return out
	}
	type rem struct {
		name string
		frac float64
	}
	rems := make([]rem, 0, len(names))
	total := 0
	for _, k := range names {
		exact := raw[k] / sum * 100
		whole := int(exact)
		out[k] = whole
		total += whole
		rems = append(rems, rem{k, exact - float64(whole)})
	}
	sort.Slice(rems, func(i, j int) bool {
		if rems[i].frac != rems[j].frac {
			return rems[i].frac > rems[j].frac
		}
		return rems[i].name < rems[j].name
	})
	for i := 0; total < 100 && i < len(rems); i++ {
		out[rems[i].name]++
		total++
	}
	return out
}

// checkWeights validates a split against the configured regions.
func checkWeights(w plan.Weights, known func(string) bool, what string) error {
	sum := 0
	regions := make([]string, 0, len(w))
	for region := range w {
		regions = append(regions, region)
	}
	sort.Strings(regions)
	for _, region := range regions {
		p := w[region]
		if !known(region) {
			return errclass.Wrap(errclass.Permanent, "UNKNOWN_REGION", fmt.Errorf("%s: region %s is not configured", what, region))
		}
		if p < 0 || p > 100 {
			return errclass.Wrap(errclass.Permanent, "INVALID_WEIGHTS", fmt.Errorf("%s: region %s: weight %d outside 0..100", what, region, p))
		}
		sum += p
	}
	if sum != 100 {
		return errclass.Wrap(errclass.Permanent, "INVALID_WEIGHTS", fmt.Errorf("%s: weights sum to %d, want 100", what, sum))
	}
	return nil
}

// Apply writes w into every weighted list of ours if the map's fingerprint is still version and
// returns the patch's global operation without waiting for it (Compute's global operations go
// PENDING -> RUNNING -> DONE over seconds; the caller polls Done in later iterations). A stale
// fingerprint is a Conflict. Regions absent from w get weight 0.
func (r *URLMapRouter) Apply(ctx context.Context, w plan.Weights, version string) (string, error) {
	what := fmt.Sprintf("patch url map %s", r.cfg.URLMap)
	if err := checkWeights(w, func(region string) bool { _, ok := r.cfg.Backends[region]; return ok }, what); err != nil {
		return "", err
	}
	ctx, cancel := withTimeout(ctx, r.WriteTimeout)
	defer cancel()

	um, err := r.get(ctx)
	if err != nil {
		return "", err
	}
	if um.GetFingerprint() != version {
		return "", errclass.Wrap(errclass.Conflict, "STALE_FINGERPRINT", fmt.Errorf(
			"%s: fingerprint is %q, expected %q (changed by someone else)", what, um.GetFingerprint(), version))
	}
	lists, err := r.ours(um)
	if err != nil {
		return "", err
	}
	for _, l := range lists {
		present := map[string]bool{}
		for _, ws := range l.ws {
			region := r.keys[backendKey(ws.GetBackendService())]
			present[region] = true
			ws.Weight = proto.Uint32(uint32(w[region])) // explicit, also when 0
		}
		for region, p := range w {
			if p > 0 && !present[region] {
				return "", errclass.Wrap(errclass.Permanent, "REGION_NOT_IN_MAP", fmt.Errorf(
					"%s: region %s (backend service %s) is not in %s", what, region, r.cfg.Backends[region], l.where))
			}
		}
	}
	um.Fingerprint = proto.String(version)
	return r.patch(ctx, um, what)
}

func (r *URLMapRouter) patch(ctx context.Context, um *computepb.UrlMap, what string) (name string, err error) {
	start := time.Now()
	defer func() { r.Observe.observe("compute.UrlMaps.Patch", start, err) }()
	op, err := r.client.Patch(ctx, &computepb.PatchUrlMapRequest{
		Project: r.cfg.Project, UrlMap: r.cfg.URLMap, UrlMapResource: um,
	})
	if err != nil {
		return "", classify(err, conditional, what)
	}
	if op.Done() {
		if e := opError(op.Proto()); e != nil {
			return "", errclass.Wrap(errclass.Permanent, opCode(op.Proto()), fmt.Errorf("%s: operation %s failed: %w", what, op.Name(), e))
		}
		return "", nil
	}
	return op.Name(), nil
}

// Done polls the patch's global operation once (GET .../global/operations/{op}), without
// waiting. A failed operation (DONE with an error) is Permanent, with its HTTP status as code.
func (r *URLMapRouter) Done(ctx context.Context, op string) (done bool, err error) {
	what := fmt.Sprintf("poll operation %s of url map %s", op, r.cfg.URLMap)
	if op == "" {
		return false, errclass.Wrap(errclass.Permanent, "NO_OPERATION", fmt.Errorf("%s: empty operation name", what))
	}
	ctx, cancel := withTimeout(ctx, r.ReadTimeout)
	defer cancel()
	start := time.Now()
	defer func() { r.Observe.observe("compute.GlobalOperations.Get", start, err) }()
	o, err := r.ops.Get(ctx, &computepb.GetGlobalOperationRequest{Project: r.cfg.Project, Operation: op}, r.Retry.callOption())
	if err != nil {
		return false, classify(err, read, what)
	}
	if o.GetStatus() != computepb.Operation_DONE {
		return false, nil
	}
	if e := opError(o); e != nil {
		return false, errclass.Wrap(errclass.Permanent, opCode(o), fmt.Errorf("%s: operation failed: %w", what, e))
	}
	return true, nil
}

// opError is a DONE operation's error, nil when it succeeded.
func opError(o *computepb.Operation) error {
	if o.GetHttpErrorStatusCode() == 0 && len(o.GetError().GetErrors()) == 0 {
		return nil
	}
	var msgs []string
	for _, e := range o.GetError().GetErrors() {
		msgs = append(msgs, e.GetCode()+": "+e.GetMessage())
	}
	if len(msgs) == 0 {
		msgs = append(msgs, o.GetHttpErrorMessage())
	}
	return fmt.Errorf("HTTP %d: %s", o.GetHttpErrorStatusCode(), strings.Join(msgs, "; "))
}

// opCode is the code label of a failed operation: its HTTP status, else OPERATION_FAILED.
func opCode(o *computepb.Operation) string {
	if c := o.GetHttpErrorStatusCode(); c != 0 {
		return fmt.Sprint(c)
	}
	return "OPERATION_FAILED"
}

// Missing reads the URL map and returns the regions whose backend service no weighted list in
// the map references (region -> backend service), and the backend services that lists holding
// ours also reference but no region names (foreign; Apply refuses such a list).
func (r *URLMapRouter) Missing(ctx context.Context) (missing map[string]string, foreign []string, err error) {
	um, err := r.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	present := map[string]bool{}
	seen := map[string]bool{}
	var all [][]*computepb.WeightedBackendService
	add := func(a *computepb.HttpRouteAction) {
		if ws := a.GetWeightedBackendServices(); len(ws) > 0 {
			all = append(all, ws)
		}
	}
	add(um.GetDefaultRouteAction())
	for _, pm := range um.GetPathMatchers() {
		add(pm.GetDefaultRouteAction())
		for _, rr := range pm.GetRouteRules() {
			add(rr.GetRouteAction())
		}
		for _, pr := range pm.GetPathRules() {
			add(pr.GetRouteAction())
		}
	}
	for _, ws := range all {
		mine := false
		for _, w := range ws {
			if region, ok := r.keys[backendKey(w.GetBackendService())]; ok {
				present[region], mine = true, true
			}
		}
		for _, w := range ws {
			k := backendKey(w.GetBackendService())
			if _, ok := r.keys[k]; !ok && mine && !seen[k] {
				seen[k] = true
				foreign = append(foreign, w.GetBackendService())
			}
		}
	}
	missing = map[string]string{}
	for region, bs := range r.cfg.Backends {
		if !present[region] {
			missing[region] = bs
		}
	}
	sort.Strings(foreign)
	return missing, foreign, nil
}
