// Package poll fetches what package health judges, and exports what it decided: the Poller
// reads Cloud Monitoring prediction metrics (one ListTimeSeries per metric type per project per
// loop), the Prober runs the active HTTP probes, and Metrics exports every evaluated
// RegionStatus to Prometheus.
//
// This is the I/O side of health. The types and the pure Evaluator stay in package health,
// which the decision core (pkg/failover, pkg/traffic/plan) imports; this package carries zap,
// Prometheus, oauth2 and net/http, and the core must never import it (see
// pkg/failover/imports_test.go).
package poll

// regionKey identifies one region of one service.
type regionKey struct{ service, region string }
