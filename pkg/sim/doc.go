// Package sim is the simulated cloud drwatchd is tested and demonstrated against: a World on a
// virtual clock (demand routed by URL map weights to regions whose replicas, faults and noise
// produce requests, failures, metric points and checkpoints) driving fake servers that speak the
// real wire protocols (subpackages fakemon, fakevertex, fakecompute; GCS through
// fsouza/fake-gcs-server).
//
// A World steps in Spec.Step increments (shortened to land exactly on sample periods,
// checkpoints, fault boundaries and routing changes). Each step draws Poisson request counts per
// region from a PCG generator seeded with Spec.Seed, so a world is deterministic for its seed and
// the actions taken on it. Requests fail when the region is in outage (all), beyond the ready
// replicas' capacity (overload), or by the errors fault and baseline noise (binomial).
//
// What the daemon sees, and when:
//   - Vertex AI metrics (response_count by response_code 200/503/500, error_count,
//     prediction_latencies as an explicit-bucket distribution in ms, replicas, target_replicas)
//     for each SamplePeriod, added to fakemon IngestDelay after the period ends. A region in
//     outage reports its routed requests as 503s and 0 replicas; a region that received no
//     request reports no request metrics (only replicas).
//   - The replication lag gauge (MetricReplicationLag) each SamplePeriod, visible at once: it is
//     a custom metric written by the replication job, not Vertex's delayed pipeline. Standbys
//     report their stale-checkpoints lag, the primary 0; a region in outage reports nothing.
//   - Checkpoint objects every CheckpointEvery: prefix+"ckpt-<unix>", with Created and Updated
//     set to the checkpoint's virtual time and the same time in metadata CheckpointTimeKey
//     (RFC 3339). With a stale-checkpoints lag L a region writes only checkpoints older than
//     now-L, so its newest checkpoint stops advancing until it is L old (a stalled replication).
//   - URL map changes (through the Compute fake, stamped with the virtual time) take effect on
//     traffic RouterPropagation later; replica changes through Vertex take ScaleUp.
//   - Faults: outage also marks the Vertex location down (every API call on it fails) and makes
//     probes answer 503; monitoring-outage makes every Monitoring call UNAVAILABLE; api-errors
//     fails that fraction of Vertex and Compute calls (UNAVAILABLE/503, a fifth of them
//     RESOURCE_EXHAUSTED/429).
//
// Production differs only by client options: Env's MonitoringOptions, VertexOptions,
// ComputeOptions and StorageOptions point the real cloud.google.com/go clients at loopback
// without credentials; in production the daemon passes none (Application Default Credentials)
// and, for Vertex AI, option.WithEndpoint(region+"-aiplatform.googleapis.com:443").
package sim
