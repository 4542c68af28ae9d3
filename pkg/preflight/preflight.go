// Package preflight runs every read-only check an SRE wants before trusting drwatchd with
// production, against the configured cloud (or the simulated one), and reports a checklist: each
// line ok, warn or fail, with what to fix. It changes nothing in the cloud.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"cloud.google.com/go/storage"
	"google.golang.org/grpc/status"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// Status of one check.
type Status string

// Statuses.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one line of the checklist.
type Check struct {
	Status Status
	// What was checked, naming the config field it comes from.
	What string
	// Detail: what was found; Fix: what to do (empty when ok).
	Detail, Fix string
}

// Report is the whole checklist.
type Report struct{ Checks []Check }

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == Fail })
}

// Write prints the checklist, one check per line (and its fix indented below), then a summary.
func (r Report) Write(w io.Writer) error {
	var b strings.Builder
	n := map[Status]int{}
	for _, c := range r.Checks {
		n[c.Status]++
		fmt.Fprintf(&b, "%-4s  %s: %s\n", c.Status, c.What, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(&b, "      fix: %s\n", c.Fix)
		}
	}
	fmt.Fprintf(&b, "\n%d ok, %d warn, %d fail\n", n[OK], n[Warn], n[Fail])
	_, err := io.WriteString(w, b.String())
	return err
}

// Options tune the run.
type Options struct {
	// Timeout bounds each check's calls (default 15 s).
	Timeout time.Duration
	// Now is the time checkpoint freshness is judged at (default time.Now()).
	Now time.Time
	// HTTPClient reaches the Alertmanagers (default: a client with Timeout).
	HTTPClient *http.Client
}

// Run performs every check of cfg through clients.
func Run(ctx context.Context, cfg *config.Config, clients *gcp.Clients, o Options) Report {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	r := &runner{cfg: cfg, clients: clients, o: o, mon: gcp.NewMonitoringSource(clients.Monitoring)}
	r.mon.Timeout = o.Timeout
	r.mon.Retry = gcp.RetryPolicy{Retries: 1, Initial: 100 * time.Millisecond, Max: time.Second}
	for i := range cfg.Services {
		r.service(ctx, i)
	}
	r.stateStore(ctx)
	r.lease(ctx)
	r.alertmanagers(ctx)
	return Report{Checks: r.checks}
}

type runner struct {
	cfg     *config.Config
	clients *gcp.Clients
	o       Options
	mon     *gcp.MonitoringSource
	checks  []Check
}

func (r *runner) add(s Status, what, detail, fix string) {
	r.checks = append(r.checks, Check{Status: s, What: what, Detail: detail, Fix: fix})
}

func (r *runner) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.o.Timeout)
}

// permission names the IAM permission a failed call needs, for the fix line.
func permissionFix(err error, perm, otherwise string) string {
	if _, code := errclass.Of(err); code == "PERMISSION_DENIED" || code == "403" || code == "UNAUTHENTICATED" || code == "401" {
		return fmt.Sprintf("grant the daemon's service account %s (check the credentials: GOOGLE_APPLICATION_CREDENTIALS or the attached service account)", perm)
	}
	return otherwise
}

func (r *runner) service(ctx context.Context, i int) {
	svc := &r.cfg.Services[i]
	p := fmt.Sprintf("services[%d]", i)
	for j, reg := range svc.Regions {
		r.endpoint(ctx, svc, fmt.Sprintf("%s.regions[%d]", p, j), reg)
	}
	switch svc.Shift.Router {
	case "urlmap", "":
		r.urlMap(ctx, svc, p)
	}
	r.metrics(ctx, svc, p)
	for j, reg := range svc.Regions {
		if reg.Checkpoint != nil {
			r.checkpoint(ctx, svc, fmt.Sprintf("%s.regions[%d].checkpoint", p, j), reg)
		}
	}
}

func (r *runner) endpoint(ctx context.Context, svc *config.Service, p string, reg config.Region) {
	what := fmt.Sprintf("%s.endpoint_id (%s, %s)", p, svc.Name, reg.Name)
	name := gcp.EndpointName(svc.Project, reg.Name, reg.EndpointID)
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	c, err := r.clients.Vertex.Client(ctx, reg.Name)
	if err != nil {
		r.add(Fail, what, fmt.Sprintf("no Vertex AI client for %s: %v", reg.Name, err), "check the region name")
		return
	}
	ep, err := c.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: name})
	if err != nil {
		if msg, notFound := grpcNotFound(err); notFound {
			r.add(Fail, what, fmt.Sprintf("endpoint %s does not exist: %s", name, msg),
				fmt.Sprintf("set %s.endpoint_id to the numeric ID of the endpoint serving %s in %s (gcloud ai endpoints list --region=%s)", p, svc.Name, reg.Name, reg.Name))
			return
		}
		err = classified(err)
		fix := permissionFix(err, "aiplatform.endpoints.get (roles/aiplatform.user)", "")
		if fix == "" {
			fix = "check that the Vertex AI API is enabled and reachable in " + reg.Name
		}
		r.add(Fail, what, fmt.Sprintf("get endpoint %s: %v", name, err), fix)
		return
	}
	var dm *aiplatformpb.DeployedModel
	for _, d := range ep.GetDeployedModels() {
		if d.GetId() == reg.DeployedModelID {
			dm = d
		}
	}
	if dm == nil {
		ids := make([]string, 0, len(ep.GetDeployedModels()))
		for _, d := range ep.GetDeployedModels() {
			ids = append(ids, d.GetId())
		}
		r.add(Fail, p+".deployed_model_id", fmt.Sprintf("deployed model %q is not on endpoint %s (deployed: %s)", reg.DeployedModelID, name, strings.Join(ids, ", ")),
			fmt.Sprintf("set %s.deployed_model_id to one of the endpoint's deployed models", p))
		return
	}
	r.add(OK, what, fmt.Sprintf("endpoint %s with deployed model %s", name, reg.DeployedModelID), "")
	if ep.GetEtag() == "" {
		r.add(Warn, what, "the endpoint returns no etag: traffic-split writes would be blind (drwatchd_traffic_blind_writes_total)", "")
	}
}

func grpcNotFound(err error) (string, bool) {
	msg := oneLine(err)
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	return msg, errclass.Is(classified(err), errclass.NotFound)
}

func healthKey(reg config.Region) health.SeriesKey {
	return health.SeriesKey{Location: reg.Name, EndpointID: reg.EndpointID}
}

// classified classifies a raw client error through the gcp adapters' rules.
func classified(err error) error { return gcp.Classify(err, "") }

func (r *runner) urlMap(ctx context.Context, svc *config.Service, p string) {
	what := fmt.Sprintf("%s.shift.url_map (%s)", p, svc.Name)
	parts := strings.Split(svc.Shift.URLMap, "/")
	if len(parts) != 5 {
		r.add(Fail, what, fmt.Sprintf("%q is not projects/P/global/urlMaps/NAME", svc.Shift.URLMap), "fix the config (drwatchd check-config)")
		return
	}
	backends := map[string]string{}
	for _, reg := range svc.Regions {
		backends[reg.Name] = reg.BackendService
	}
	router, err := gcp.NewURLMapRouter(r.clients.Compute, r.clients.ComputeOps, gcp.URLMapConfig{Project: parts[1], URLMap: parts[4], Backends: backends})
	if err != nil {
		r.add(Fail, what, err.Error(), "fix the regions' backend_service values")
		return
	}
	router.ReadTimeout = r.o.Timeout
	missing, foreign, err := router.Missing(ctx)
	if err != nil {
		fix := permissionFix(err, "compute.urlMaps.get and compute.urlMaps.update (roles/compute.loadBalancerAdmin)", "")
		if fix == "" && errclass.Is(err, errclass.NotFound) {
			fix = "create the URL map, or set shift.url_map to the global external Application Load Balancer's URL map"
		}
		if fix == "" {
			fix = "check the URL map's name and the Compute API"
		}
		r.add(Fail, what, err.Error(), fix)
		return
	}
	regions := make([]string, 0, len(missing))
	for region := range missing {
		regions = append(regions, region)
	}
	slices.Sort(regions)
	for _, region := range regions {
		j := slices.IndexFunc(svc.Regions, func(x config.Region) bool { return x.Name == region })
		r.add(Fail, fmt.Sprintf("%s.regions[%d].backend_service (%s, %s)", p, j, svc.Name, region),
			fmt.Sprintf("URL map %s does not reference backend service %s: traffic cannot be shifted to %s", svc.Shift.URLMap, missing[region], region),
			fmt.Sprintf("add %s to the URL map's weightedBackendServices (weight 0), or fix %s.regions[%d].backend_service", missing[region], p, j))
	}
	for _, bs := range foreign {
		r.add(Fail, what, fmt.Sprintf("URL map's weighted backends include %s, which no region of %s names: drwatchd refuses to write percentages next to a weight it does not own", bs, svc.Name),
			fmt.Sprintf("name it as a region's backend_service in %s.regions, or remove it from the URL map's weightedBackendServices", p))
	}
	if len(missing) == 0 && len(foreign) == 0 {
		r.add(OK, what, fmt.Sprintf("URL map references every region's backend service (%d)", len(backends)), "")
	}
}

func (r *runner) metrics(ctx context.Context, svc *config.Service, p string) {
	window := svc.Health.Window.D()
	for _, mt := range []string{gcp.MetricResponseCount, gcp.MetricErrorCount, gcp.MetricPredictionLatencies} {
		what := fmt.Sprintf("%s.health (%s): metric %s", p, svc.Name, shortMetric(mt))
		info, err := r.mon.Describe(ctx, svc.Project, mt)
		if err != nil {
			fix := permissionFix(err, "monitoring.metricDescriptors.get and monitoring.timeSeries.list (roles/monitoring.viewer)", "")
			if fix == "" {
				fix = "check that the project serves Vertex AI online predictions and the Monitoring API is enabled"
			}
			r.add(Fail, what, err.Error(), fix)
			continue
		}
		detail := fmt.Sprintf("descriptor found (unit %q, sampled every %s, ingest delay up to %s)", info.Unit, info.SamplePeriod, info.IngestDelay)
		if info.IngestDelay+info.SamplePeriod >= window {
			r.add(Warn, what, detail+fmt.Sprintf(": a %s window ending now holds no complete bucket", window),
				fmt.Sprintf("raise %s.health.window above %s (ingest delay + sample period), or rely on probes for fast detection", p, info.IngestDelay+info.SamplePeriod))
			continue
		}
		r.add(OK, what, detail, "")
	}
	// Latency data: which latency_type values exist per endpoint.
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	now := r.o.Now
	types, err := r.mon.LatencyTypes(ctx, svc.Project, now.Add(-svc.Health.Lookback.D()-10*time.Minute), now)
	if err != nil {
		r.add(Fail, fmt.Sprintf("%s.health (%s): latency data", p, svc.Name), err.Error(),
			permissionFix(err, "monitoring.timeSeries.list (roles/monitoring.viewer)", "check the Monitoring API"))
		return
	}
	for j, reg := range svc.Regions {
		what := fmt.Sprintf("%s.regions[%d] (%s, %s): latency data", p, j, svc.Name, reg.Name)
		lt := types[healthKey(reg)]
		switch {
		case len(lt) == 0:
			r.add(Warn, what, "no prediction_latencies series in the lookback (no traffic yet, or the endpoint ID is wrong)", "send traffic, or check endpoint_id; p99 latency gives no verdict without it")
		case !slices.Contains(lt, gcp.LatencyTypeTotal):
			r.add(Fail, what, fmt.Sprintf("latency_type values %v lack %q", lt, gcp.LatencyTypeTotal), "report this: drwatchd reads latency_type total")
		default:
			r.add(OK, what, fmt.Sprintf("latency_type values %v", lt), "")
		}
	}
}

func shortMetric(mt string) string {
	return strings.TrimPrefix(mt, "aiplatform.googleapis.com/prediction/online/")
}

func (r *runner) checkpoint(ctx context.Context, svc *config.Service, p string, reg config.Region) {
	what := fmt.Sprintf("%s (%s, %s)", p, svc.Name, reg.Name)
	l := gcp.NewBucketLister(r.clients.Storage)
	l.Timeout = r.o.Timeout
	newest, ok, err := l.Newest(ctx, reg.Checkpoint.Bucket, reg.Checkpoint.Prefix)
	if err != nil {
		r.add(Fail, what, err.Error(), permissionFix(err, "storage.objects.list on the bucket (roles/storage.objectViewer)", "check the bucket name and prefix"))
		return
	}
	if !ok {
		r.add(Warn, what, fmt.Sprintf("no object under gs://%s/%s", reg.Checkpoint.Bucket, reg.Checkpoint.Prefix), "check the prefix; with none, the region's RPO is stale")
		return
	}
	age := r.o.Now.Sub(newest)
	if t := svc.RPO.Target.D(); t > 0 && age > t {
		r.add(Warn, what, fmt.Sprintf("newest checkpoint is %s old (rpo.target %s)", age.Round(time.Second), t), "check the replication job; a standby this stale is not an eligible target")
		return
	}
	r.add(OK, what, fmt.Sprintf("readable; newest checkpoint %s old", age.Round(time.Second)), "")
}

func (r *runner) stateStore(ctx context.Context) {
	s := r.cfg.State
	switch s.Backend {
	case "gcs":
		r.gcsWritable(ctx, "state", s.Bucket, s.Object)
	default:
		dir := filepath.Dir(s.Path)
		f, err := os.CreateTemp(dir, ".drwatchd-preflight-*")
		if err != nil {
			r.add(Fail, "state.path", fmt.Sprintf("directory %s is not writable: %v", dir, err), "create the directory and give the daemon's user write access (systemd: StateDirectory=drwatchd)")
			return
		}
		name := f.Name()
		_ = f.Close()
		_ = os.Remove(name)
		r.add(OK, "state.path", fmt.Sprintf("directory %s is writable", dir), "")
	}
}

func (r *runner) lease(ctx context.Context) {
	if !r.cfg.Leader.Enabled {
		return
	}
	r.gcsWritable(ctx, "leader", r.cfg.Leader.Bucket, r.cfg.Leader.Object)
}

// gcsWritable checks the bucket exists and, with testIamPermissions, that objects in it can be
// read and written.
func (r *runner) gcsWritable(ctx context.Context, section, bucket, object string) {
	what := fmt.Sprintf("%s.bucket, %s.object (gs://%s/%s)", section, section, bucket, object)
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	b := r.clients.Storage.Bucket(bucket)
	if _, err := b.Attrs(ctx); err != nil {
		if errors.Is(err, storage.ErrBucketNotExist) {
			r.add(Fail, what, fmt.Sprintf("bucket %s does not exist", bucket), "create it (versioning off, one region near the daemon)")
			return
		}
		r.add(Fail, what, fmt.Sprintf("read bucket %s: %v", bucket, err), permissionFix(classified(err), "storage.buckets.get (roles/storage.objectUser or a custom role)", "check the bucket name"))
		return
	}
	want := []string{"storage.objects.get", "storage.objects.create", "storage.objects.delete"}
	got, err := b.IAM().TestPermissions(ctx, want)
	if err != nil {
		r.add(Warn, what, fmt.Sprintf("bucket exists; could not test permissions (testIamPermissions: %v)", oneLine(err)),
			"make sure the daemon's service account has roles/storage.objectUser on the bucket")
		return
	}
	var lacking []string
	for _, p := range want {
		if !slices.Contains(got, p) {
			lacking = append(lacking, p)
		}
	}
	if len(lacking) > 0 {
		r.add(Fail, what, "lacking "+strings.Join(lacking, ", "), "grant the daemon's service account roles/storage.objectUser on the bucket")
		return
	}
	r.add(OK, what, "bucket exists; objects can be read and written", "")
}

func (r *runner) alertmanagers(ctx context.Context) {
	for i, am := range r.cfg.Alerting.Alertmanagers {
		what := fmt.Sprintf("alerting.alertmanagers[%d].url (%s)", i, am.URL)
		ctx, cancel := r.ctx(ctx)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(am.URL, "/")+"/api/v2/status", nil)
		if err != nil {
			cancel()
			r.add(Fail, what, err.Error(), "fix the URL")
			continue
		}
		resp, err := r.o.HTTPClient.Do(req)
		cancel()
		if err != nil {
			r.add(Fail, what, "does not answer: "+oneLine(err), "check the address and that Alertmanager runs; without it, pages go nowhere")
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.add(Fail, what, fmt.Sprintf("GET /api/v2/status answered %d", resp.StatusCode), "point the URL at an Alertmanager's base URL")
			continue
		}
		r.add(OK, what, "answers", "")
	}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
