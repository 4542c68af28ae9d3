// Package version carries build identification, set at link time.
package version

import "runtime"

// Set by -ldflags "-X github.com/drwatchd/drwatchd/pkg/version.Version=... -X ...Revision=...".
var (
	Version  = "dev"
	Revision = "unknown"
)

// GoVersion is the toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// String is "drwatchd VERSION (REVISION, GOVERSION)".
func String() string { return "drwatchd " + Version + " (" + Revision + ", " + GoVersion() + ")" }
