// Package track is the I/O side of package checkpoint: the Tracker reads replication-lag
// metrics and checkpoint bucket listings and turns them into a checkpoint.RegionRPO per region,
// exported to Prometheus. The decision core imports the types in package checkpoint, never this
// package (see pkg/failover/imports_test.go).
package track
