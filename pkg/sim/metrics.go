package sim

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	distributionpb "google.golang.org/genproto/googleapis/api/distribution"
	metricpb "google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
)

// The world publishes fakemon's Vertex AI metric types, and these.
const (
	// MetricReplicationLag is a GAUGE DOUBLE in seconds per region (metric labels location and
	// service; resource global with label project_id).
	MetricReplicationLag = "custom.googleapis.com/checkpoint/replication_lag_seconds"
	ResourceGlobal       = "global"
	// CheckpointTimeKey is the checkpoint objects' metadata key holding their time (RFC 3339).
	CheckpointTimeKey = "checkpoint-time"
)

// latencyBoundsMs are the explicit bucket bounds of prediction_latencies, in ms.
var latencyBoundsMs = []float64{1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
	1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000}

// observeLatency adds n successful requests to the period's histogram, as expected counts. A
// request's latency is the latency fault's shift plus a lognormal service time (median
// r.median times the period's jitter, sigma latencySigma): a latency fault delays every request
// by its seconds, it does not stretch the distribution.
func (w *World) observeLatency(r *region, n int64) {
	if n <= 0 {
		return
	}
	medMs := r.median * r.jitter * 1000
	shiftMs := r.extraLat * 1000
	key := latKey{medMs, shiftMs}
	probs := w.latProbs[key]
	if probs == nil {
		if len(w.latProbs) > 4096 {
			clear(w.latProbs)
		}
		probs = make([]float64, len(latencyBoundsMs)+1)
		prev := 0.0
		for i, b := range latencyBoundsMs {
			c := shiftedCDF(b, shiftMs, medMs)
			probs[i] = c - prev
			prev = c
		}
		probs[len(latencyBoundsMs)] = 1 - prev
		w.latProbs[key] = probs
	}
	fn := float64(n)
	for i, p := range probs {
		r.hist[i] += fn * p
	}
	s2 := latencySigma * latencySigma
	mean := medMs * math.Exp(s2/2)           // E[X]
	meanSq := medMs * medMs * math.Exp(2*s2) // E[X^2]
	r.sum += fn * (shiftMs + mean)
	r.sumSq += fn * (meanSq + 2*shiftMs*mean + shiftMs*shiftMs)
}

// shiftedCDF is P(shift + X <= x) for X lognormal with median med and sigma latencySigma.
func shiftedCDF(x, shift, med float64) float64 {
	if x <= shift || med <= 0 {
		return 0
	}
	return normCDF((math.Log(x-shift) - math.Log(med)) / latencySigma)
}

// timeoutProb is the chance that a request served now is slower than the client timeout.
func (w *World) timeoutProb(r *region) float64 {
	to := on(w.spec.ClientTimeout)
	if to <= 0 {
		return 0
	}
	return 1 - shiftedCDF(to.Seconds(), r.extraLat, r.median)
}

// closePeriod turns the period ending at end into points: Vertex metrics due at
// end+IngestDelay, the replication lag gauge due at once (it is a custom metric written by the
// replication job, not Vertex's delayed pipeline). Then a new period starts.
func (w *World) closePeriod(end time.Time) {
	start := w.period
	delta := &monitoringpb.TimeInterval{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)}
	gauge := &monitoringpb.TimeInterval{StartTime: timestamppb.New(end), EndTime: timestamppb.New(end)}
	var vertex, lag []*monitoringpb.TimeSeries
	for _, r := range w.regions {
		res := &monitoredres.MonitoredResource{Type: fakemon.ResourceEndpoint, Labels: map[string]string{
			"resource_container": r.svc.spec.Project,
			"location":           r.spec.Name,
			"endpoint_id":        r.spec.EndpointID,
		}}
		dm := r.spec.DeployedModelID
		if r.pTotal > 0 {
			ok := r.pTotal - r.pUnavail - r.pErr
			vertex = append(vertex, int64Series(fakemon.MetricResponseCount, res, delta, metricpb.MetricDescriptor_DELTA,
				ok, "deployed_model_id", dm, "response_code", "200"))
			if r.pUnavail > 0 {
				vertex = append(vertex, int64Series(fakemon.MetricResponseCount, res, delta, metricpb.MetricDescriptor_DELTA,
					r.pUnavail, "deployed_model_id", dm, "response_code", "503"))
			}
			if r.pErr > 0 {
				vertex = append(vertex, int64Series(fakemon.MetricResponseCount, res, delta, metricpb.MetricDescriptor_DELTA,
					r.pErr, "deployed_model_id", dm, "response_code", "500"))
			}
			vertex = append(vertex, int64Series(fakemon.MetricErrorCount, res, delta, metricpb.MetricDescriptor_DELTA,
				r.pUnavail+r.pErr, "deployed_model_id", dm))
			if ok > 0 {
				vertex = append(vertex, &monitoringpb.TimeSeries{
					Metric: &metricpb.Metric{Type: fakemon.MetricPredictionLatencies, Labels: map[string]string{
						"deployed_model_id": dm, "latency_type": "total"}},
					Resource:   res,
					MetricKind: metricpb.MetricDescriptor_DELTA,
					ValueType:  metricpb.MetricDescriptor_DISTRIBUTION,
					Points: []*monitoringpb.Point{{Interval: delta, Value: &monitoringpb.TypedValue{
						Value: &monitoringpb.TypedValue_DistributionValue{DistributionValue: r.distribution(ok)}}}},
				})
			}
		}
		ready := int64(r.ready)
		if r.down {
			ready = 0
		}
		vertex = append(vertex, int64Series(fakemon.MetricReplicas, res, gauge, metricpb.MetricDescriptor_GAUGE,
			ready, "deployed_model_id", dm))
		vertex = append(vertex, int64Series(fakemon.MetricTargetReplicas, res, gauge, metricpb.MetricDescriptor_GAUGE,
			int64(max(r.target, r.ready, r.allocated)), "deployed_model_id", dm))
		if !r.down {
			lagSec := r.stale.Seconds()
			if r.spec.Primary {
				lagSec = 0
			}
			lag = append(lag, &monitoringpb.TimeSeries{
				Metric: &metricpb.Metric{Type: MetricReplicationLag, Labels: map[string]string{
					"location": r.spec.Name, "service": r.svc.spec.Name}},
				Resource:   &monitoredres.MonitoredResource{Type: ResourceGlobal, Labels: map[string]string{"project_id": r.svc.spec.Project}},
				MetricKind: metricpb.MetricDescriptor_GAUGE,
				ValueType:  metricpb.MetricDescriptor_DOUBLE,
				Points: []*monitoringpb.Point{{Interval: gauge, Value: &monitoringpb.TypedValue{
					Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: lagSec}}}},
			})
		}
		r.pTotal, r.pUnavail, r.pErr, r.sum, r.sumSq = 0, 0, 0, 0, 0
		clear(r.hist)
		r.jitter = math.Exp(0.05 * w.rng.NormFloat64())
	}
	// Each Vertex series is ingested on its own: IngestDelay plus its own jitter.
	batches := make([]batch, 0, len(vertex)+1)
	jitter := on(w.spec.IngestJitter)
	for _, ts := range vertex {
		due := end.Add(w.spec.IngestDelay)
		if jitter > 0 {
			due = due.Add(time.Duration(w.prng.Int64N(int64(jitter))))
		}
		batches = append(batches, batch{due: due, series: []*monitoringpb.TimeSeries{ts}})
	}
	if len(lag) > 0 {
		batches = append(batches, batch{due: end, series: lag})
	}
	w.enqueue(batches)
	w.period = end
}

// enqueue merges batches into the pending queue, ordered by due time (stable: equal times keep
// their order).
func (w *World) enqueue(bs []batch) {
	if len(bs) == 0 {
		return
	}
	slices.SortStableFunc(bs, func(a, b batch) int { return a.due.Compare(b.due) })
	merged := make([]batch, 0, len(w.pending)+len(bs))
	i, j := 0, 0
	for i < len(w.pending) || j < len(bs) {
		if j == len(bs) || (i < len(w.pending) && !w.pending[i].due.After(bs[j].due)) {
			merged = append(merged, w.pending[i])
			i++
		} else {
			merged = append(merged, bs[j])
			j++
		}
	}
	w.pending = merged
}

func int64Series(typ string, res *monitoredres.MonitoredResource, iv *monitoringpb.TimeInterval,
	kind metricpb.MetricDescriptor_MetricKind, v int64, labels ...string) *monitoringpb.TimeSeries {
	lm := make(map[string]string, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		lm[labels[i]] = labels[i+1]
	}
	return &monitoringpb.TimeSeries{
		Metric:     &metricpb.Metric{Type: typ, Labels: lm},
		Resource:   res,
		MetricKind: kind,
		ValueType:  metricpb.MetricDescriptor_INT64,
		Points: []*monitoringpb.Point{{Interval: iv, Value: &monitoringpb.TypedValue{
			Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}}}},
	}
}

// distribution rounds the period's expected bucket counts to integers summing to count (largest
// remainder).
func (r *region) distribution(count int64) *distributionpb.Distribution {
	counts := make([]int64, len(r.hist))
	type rem struct {
		i int
		f float64
	}
	rems := make([]rem, len(r.hist))
	var total int64
	for i, h := range r.hist {
		fl := math.Floor(h)
		counts[i] = int64(fl)
		total += counts[i]
		rems[i] = rem{i, h - fl}
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.f > b.f:
			return -1
		case a.f < b.f:
			return 1
		}
		return 0
	})
	for k := 0; total < count; k = (k + 1) % len(rems) {
		counts[rems[k].i]++
		total++
	}
	for k := len(counts) - 1; total > count && k >= 0; {
		if counts[k] > 0 {
			counts[k]--
			total--
		} else {
			k--
		}
	}
	mean := r.sum / float64(count)
	return &distributionpb.Distribution{
		Count:                 count,
		Mean:                  mean,
		SumOfSquaredDeviation: math.Max(0, r.sumSq-float64(count)*mean*mean),
		BucketOptions: &distributionpb.Distribution_BucketOptions{
			Options: &distributionpb.Distribution_BucketOptions_ExplicitBuckets{
				ExplicitBuckets: &distributionpb.Distribution_BucketOptions_Explicit{Bounds: latencyBoundsMs}}},
		BucketCounts: counts,
	}
}

type ckptWrite struct {
	bucket, name, old string
	at                time.Time
	body              []byte
}

// checkpoints decides the checkpoint objects regions write at now. A region in outage writes
// nothing. Others write prefix+"ckpt-<unix>" for the time now-lag (the stale-checkpoints lag), if
// that is newer than their newest: so when a lag appears, the newest checkpoint's age grows from
// the fault's start until it reaches the lag, as with a stalled replication. Each keeps its last
// four objects.
func (w *World) checkpoints(now time.Time) []ckptWrite {
	var out []ckptWrite
	for _, r := range w.regions {
		if r.spec.CheckpointBucket == "" || r.down {
			continue
		}
		at := now.Add(-r.stale).Truncate(time.Second)
		if !at.After(r.newestCkp) {
			continue
		}
		r.newestCkp = at
		name := r.spec.CheckpointPrefix + "ckpt-" + strconv.FormatInt(at.Unix(), 10)
		body, _ := json.Marshal(map[string]string{
			"service": r.svc.spec.Name, "region": r.spec.Name,
			"checkpoint_time": at.Format(time.RFC3339), "written_at": now.Format(time.RFC3339),
		})
		cw := ckptWrite{bucket: r.spec.CheckpointBucket, name: name, at: at, body: body}
		r.ckpts = append(r.ckpts, name)
		if len(r.ckpts) > 4 {
			cw.old = r.ckpts[0]
			r.ckpts = r.ckpts[1:]
		}
		out = append(out, cw)
	}
	return out
}

// writeCheckpoints stores the objects in fake GCS with Created and Updated set to the checkpoint
// time, and the time in metadata CheckpointTimeKey too.
func (w *World) writeCheckpoints(ws []ckptWrite) {
	g := w.fakes.GCS
	if g == nil {
		return
	}
	for _, c := range ws {
		obj := fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{
				BucketName:  c.bucket,
				Name:        c.name,
				ContentType: "application/json",
				Created:     c.at,
				Updated:     c.at,
				Metadata:    map[string]string{CheckpointTimeKey: c.at.Format(time.RFC3339)},
			},
			Content: c.body,
		}
		_ = g.CreateObjectStreaming(obj.StreamingObject())
		if c.old != "" {
			_ = g.Backend().DeleteObject(c.bucket, c.old)
		}
	}
}
