package gcp

import (
	"context"
	"fmt"
	"time"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// EndpointName is a Vertex AI endpoint's resource name.
func EndpointName(project, location, endpointID string) string {
	return fmt.Sprintf("projects/%s/locations/%s/endpoints/%s", project, location, endpointID)
}

// EndpointSplitConfig names one Vertex AI endpoint and the deployed model of each "region"
// (any label the service's config uses for a deployed model behind that endpoint).
type EndpointSplitConfig struct {
	Project, Location, EndpointID string
	// DeployedModels maps region -> deployed model ID.
	DeployedModels map[string]string
}

// EndpointSplitRouter implements traffic.Router with one Vertex AI endpoint's traffic_split.
// The version is the endpoint's etag. Set is a read-modify-write: UpdateEndpoint with mask
// "traffic_split" carrying the etag; deployed models not mapped to a region get no traffic.
// Get reports only the mapped deployed models (traffic on an unmapped one is left out, so the
// split then sums to less than 100, which the executor sees).
type EndpointSplitRouter struct {
	client *aiplatform.EndpointClient
	cfg    EndpointSplitConfig
	name   string
	region map[string]string // deployed model ID -> region

	// Timeout bounds each call (default 15 s).
	Timeout time.Duration
	// Retry bounds in-call retries of UNAVAILABLE on reads (default DefaultRetry); the
	// conditional UpdateEndpoint is never retried inside a call.
	Retry RetryPolicy
	// Observe, when set, is told about every call.
	Observe Observer
	// OnBlindWrite, when set, is told before an UpdateEndpoint that carries no etag because
	// GetEndpoint returned none (the field is optional): a blind overwrite, which cannot detect a
	// concurrent change. The write still goes ahead; the caller logs and counts it.
	OnBlindWrite func(endpoint string)
}

// NewEndpointSplitRouter checks cfg and returns a router. c must reach cfg.Location's
// regional endpoint.
func NewEndpointSplitRouter(c *aiplatform.EndpointClient, cfg EndpointSplitConfig) (*EndpointSplitRouter, error) {
	if cfg.Project == "" || cfg.Location == "" || cfg.EndpointID == "" || len(cfg.DeployedModels) == 0 {
		return nil, fmt.Errorf("endpoint split router: project, location, endpoint and deployed models are required")
	}
	region := map[string]string{}
	for r, id := range cfg.DeployedModels {
		if id == "" {
			return nil, fmt.Errorf("endpoint split router: region %s: empty deployed model id", r)
		}
		if other, dup := region[id]; dup {
			return nil, fmt.Errorf("endpoint split router: regions %s and %s share deployed model %s", other, r, id)
		}
		region[id] = r
	}
	return &EndpointSplitRouter{client: c, cfg: cfg, region: region,
		name: EndpointName(cfg.Project, cfg.Location, cfg.EndpointID), Timeout: 15 * time.Second, Retry: DefaultRetry}, nil
}

func (r *EndpointSplitRouter) get(ctx context.Context) (ep *aiplatformpb.Endpoint, err error) {
	ctx, cancel := withTimeout(ctx, r.Timeout)
	defer cancel()
	start := time.Now()
	defer func() { r.Observe.observe("aiplatform.GetEndpoint", start, err) }()
	ep, err = r.client.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: r.name}, r.Retry.callOption())
	return ep, classify(err, read, "get endpoint "+r.name)
}

// Get returns the split by region and the endpoint's etag.
func (r *EndpointSplitRouter) Get(ctx context.Context) (plan.Weights, string, error) {
	ep, err := r.get(ctx)
	if err != nil {
		return nil, "", err
	}
	w := plan.Weights{}
	for region := range r.cfg.DeployedModels {
		w[region] = 0
	}
	for id, p := range ep.GetTrafficSplit() {
		if region, ok := r.region[id]; ok {
			w[region] = int(p)
		}
	}
	return w, ep.GetEtag(), nil
}

// Apply writes w if the endpoint's etag is still version. UpdateEndpoint is synchronous, so the
// write is complete on return (op ""). A stale etag
// is a Conflict (ABORTED, or FAILED_PRECONDITION naming the etag); FAILED_PRECONDITION for any
// other condition (an operation in progress on the endpoint) is Permanent, not a conflict: the
// split was not changed by anyone, and the next iteration tries again. A region whose deployed
// model is not on the endpoint is Permanent. An empty version (GetEndpoint returned no etag) is
// a blind overwrite, reported to OnBlindWrite.
func (r *EndpointSplitRouter) Apply(ctx context.Context, w plan.Weights, version string) (string, error) {
	what := "update traffic split of endpoint " + r.name
	if err := checkWeights(w, func(region string) bool { _, ok := r.cfg.DeployedModels[region]; return ok }, what); err != nil {
		return "", err
	}
	ep, err := r.get(ctx)
	if err != nil {
		return "", err
	}
	if ep.GetEtag() != version {
		return "", errclass.Wrap(errclass.Conflict, "STALE_ETAG", fmt.Errorf(
			"%s: etag is %q, expected %q (changed by someone else)", what, ep.GetEtag(), version))
	}
	deployed := map[string]bool{}
	for _, dm := range ep.GetDeployedModels() {
		deployed[dm.GetId()] = true
	}
	split := map[string]int32{}
	for region, id := range r.cfg.DeployedModels {
		if !deployed[id] {
			if w[region] == 0 {
				continue
			}
			return "", errclass.Wrap(errclass.Permanent, "DEPLOYED_MODEL_NOT_FOUND", fmt.Errorf(
				"%s: region %s: deployed model %s is not on the endpoint", what, region, id))
		}
		split[id] = int32(w[region])
	}

	if version == "" && r.OnBlindWrite != nil {
		r.OnBlindWrite(r.name)
	}
	ctx, cancel := withTimeout(ctx, r.Timeout)
	defer cancel()
	start := time.Now()
	_, err = r.client.UpdateEndpoint(ctx, &aiplatformpb.UpdateEndpointRequest{
		Endpoint:   &aiplatformpb.Endpoint{Name: r.name, TrafficSplit: split, Etag: version},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic_split"}},
	})
	err = classify(err, conditional, what)
	r.Observe.observe("aiplatform.UpdateEndpoint", start, err)
	if err != nil {
		return "", err
	}
	return "", nil
}

// Done is true: UpdateEndpoint has no long-running operation.
func (r *EndpointSplitRouter) Done(ctx context.Context, _ string) (bool, error) {
	return ctx.Err() == nil, ctx.Err()
}
