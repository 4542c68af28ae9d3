// Package sim is the simulated cloud drwatchd is tested and demonstrated against: a World on a
// virtual clock (demand routed by URL map weights to regions whose replicas, faults and noise
// produce requests, failures, metric points and checkpoints) driving fake servers that speak the
// real wire protocols (subpackages fakemon, fakevertex, fakecompute; GCS through
// fsouza/fake-gcs-server).
//
// A World steps in Spec.Step increments (shortened to land exactly on sample periods,
// checkpoints, fault boundaries and routing changes). Each step draws Poisson request counts per
// region from a PCG generator seeded with Spec.Seed; the physics' jitter (ingestion,
// propagation), the provisioning draws (scale-up jitter, stock-outs), each region's probe blips
// and the probe noise come from their own generators (or a hash of seed, region, time and probe
// count), so a world is deterministic for its seed and the actions taken on it. Requests fail
// when the region is in outage (all), beyond the ready replicas' capacity (overload), by the
// errors fault and baseline noise (binomial), or when slower than ClientTimeout (timed out).
//
// What the daemon sees, and when:
//   - Vertex AI metrics (response_count by response_code 200/503/500, error_count (not read by
//     the daemon, which takes errors from response_count's 5xx codes),
//     prediction_latencies as an explicit-bucket distribution in ms, replicas, target_replicas)
//     for each SamplePeriod. Each series (each metric type, each response_code) is ingested on
//     its own: added to fakemon IngestDelay plus its own U[0, IngestJitter) after the period
//     ends, so a minute's response_count and error_count become visible at different times.
//     Their descriptors (fakemon.VertexDescriptors) state SamplePeriod and IngestDelay +
//     IngestJitter as metadata.sample_period and ingest_delay (Google documents 60 s and up to
//     360 s for Vertex AI; the default world's delays are within that). A
//     region in outage reports its routed requests as 503s and 0 replicas; a region that
//     received no request reports no request metrics (only replicas). Requests that time out
//     at the client are answered (200) in the server's metrics, with their latency.
//   - Latency: a request takes the latency fault's seconds plus a lognormal service time
//     (median BaseLatency times an overload factor, p99 about 2.5x the median): a latency
//     fault shifts the distribution, it does not stretch it.
//   - The replication lag gauge (MetricReplicationLag) each SamplePeriod, visible at once: it is
//     a custom metric written by the replication job, not Vertex's delayed pipeline. Standbys
//     report their stale-checkpoints lag, the primary 0; a region in outage reports nothing.
//   - Checkpoint objects every CheckpointEvery: prefix+"ckpt-<unix>", with Created and Updated
//     set to the checkpoint's virtual time and the same time in metadata CheckpointTimeKey
//     (RFC 3339). With a stale-checkpoints lag L a region writes only checkpoints older than
//     now-L, so its newest checkpoint stops advancing until it is L old (a stalled replication).
//   - URL map changes (through the Compute fake) are global operations that go PENDING ->
//     RUNNING -> DONE over fakecompute.OpPending + OpRunning (1 s + 4 s of virtual time: Compute
//     documents global operations as asynchronous with those three states, and its client's
//     Operation.Wait polls with a 1, 2, 4 s backoff, i.e. it expects seconds, not minutes); the
//     map changes when the operation is DONE, stamped with that time, and takes effect on
//     traffic RouterPropagation plus U[0, RouterPropagationJitter) later, and never before a
//     change made earlier (the load balancer applies them in order).
//   - Replicas: a MutateDeployedModel that raises min_replica_count provisions the missing
//     replicas, ready ScaleUp plus U[0, ScaleUpJitter) later; a StockoutRatio of scale-ups fail
//     then instead (no replica comes, the operation ends in RESOURCE_EXHAUSTED, min and max go
//     back). Vertex AI's autoscaler runs on every region: it wants enough replicas for the
//     demand routed there at AutoscaleTarget utilisation, within [min, max], ignoring
//     deviations within 10 %; more are provisioned at once (same delay and stock-outs), fewer
//     only after ScaleDownAfter below target. The fake shows the ready count as the deployed
//     model's status.available_replica_count and the replicas metric; RegionView.Allocated is
//     what is paid for (ready plus provisioning that will come).
//   - Probes: 503 in an outage or overload, 500 with the errors fault combined with
//     ProbeFailureRatio, and no answer at all (the connection dropped) during a probe blip: a
//     Poisson process of ProbeBlips.PerHour network losses of ProbeBlips.Length per region.
//   - Faults: outage also marks the Vertex location down (every API call on it fails) and makes
//     probes answer 503; monitoring-outage makes every Monitoring call UNAVAILABLE; api-errors
//     fails that fraction of Vertex and Compute calls (UNAVAILABLE/503, a fifth of them
//     RESOURCE_EXHAUSTED/429).
//
// The defaults are documented real values (ProfileDefault), and ProfileRough is the documented
// worst case:
//   - Ingestion (180 s + up to 60 s; rough 300 s + up to 60 s, i.e. up to 360 s): Google Cloud's
//     metric list describes Vertex AI's prediction metrics as "sampled every 60 seconds. After
//     sampling, data is not visible for up to 360 seconds" (prediction_latencies); Cloud Monitoring, "Latency of metric data"
//     (https://cloud.google.com/monitoring/api/v3/latency-n-retention): a metric's latency is
//     stated per metric type, each series is ingested on its own.
//   - Propagation (30 s + up to 60 s; rough 60 s + up to 120 s, i.e. up to 3 minutes): Cloud Load
//     Balancing's documentation warns that URL map changes take time to reach every Google
//     Front End (seconds to minutes, not at once); issue 11 sets 30 s + up to 60 s as typical
//     and 3 minutes as the worst case. The world's delay is independent of the daemon's own
//     `propagation` setting.
//   - Scale-up (3 min + up to 2 min; rough 5 min + up to 5 min, i.e. up to 10 minutes): Vertex AI
//     deploys a node in minutes (machine, container, model download); community write-ups of
//     Vertex autoscaling quote 1-3 minutes per replica for small CPU models, longer with GPUs.
//   - Stock-outs (default 0; rough 10 %): GPU capacity is exhausted in a zone or region often
//     enough to be routine, e.g. kubernetes/k8s.io#9834 ("ZONE_RESOURCE_POOL_EXHAUSTED ...
//     state:STOCKOUT"), openreview/openreview-expertise#401 ("Resources are insufficient in
//     region: us-central1" on Vertex AI).
//   - Autoscaling (target 0.6, scale-down after 10 minutes): AutoscalingMetricSpec.target "The
//     default value is 60 (representing 60%) if not provided", replicas change "once the real
//     usage deviates from the target by a certain percentage" (10 % here, the Kubernetes HPA's
//     default tolerance); Vertex AI docs, "Autoscaling": nodes scale between
//     dedicatedResources.minReplicaCount and maxReplicaCount. Scale-in waits 10 minutes, the
//     stabilisation period of Google Cloud's autoscalers (Compute Engine autoscaler, "scale-in
//     controls": 10 minutes of recommendations are considered before removing instances).
//   - Client timeout (30 s): a common client deadline (issue 11).
//   - Probe noise (a probe is a request: the baseline error ratio) and blips (none by default;
//     rough: 2 an hour, 30 s each): short losses between a prober and a region, as load
//     balancers' health checks assume by requiring several consecutive failures.
//   - Retention (7 h by default: more than any lookback the daemon reads, so long runs stay
//     small): a recording backtested afterwards (`drwatchd backtest --sim`) keeps up to 6 weeks,
//     how long Cloud Monitoring keeps full-resolution points of Google Cloud metrics (Cloud
//     Monitoring, "Quotas and limits", Data retention; "Retention and latency of metric data":
//     expired points are deleted and no longer appear in Monitoring API results).
//
// Production differs only by client options: Env's MonitoringOptions, VertexOptions,
// ComputeOptions and StorageOptions point the real cloud.google.com/go clients at loopback
// without credentials; in production the daemon passes none (Application Default Credentials)
// and, for Vertex AI, option.WithEndpoint(region+"-aiplatform.googleapis.com:443").
package sim
