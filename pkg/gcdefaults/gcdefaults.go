// Package gcdefaults sets the Go garbage collector's defaults for the daemon as shipped: GOGC=75
// unless the operator set GOGC, and a soft memory limit (GOMEMLIMIT) of 0.8 x the memory limit of
// the process's cgroup unless the operator set GOMEMLIMIT. `drwatchd run` applies it before it
// builds anything; the bench applies the same function to the process it measures.
//
// Why these values (docs/benchmarks.md, "Memory limit"):
//   - GOGC=75: Prometheus 3 uses the same default (config.DefaultGoGCPercentage, applied when the
//     GOGC environment variable is unset). drwatchd is a periodic loop, idle between polls: its
//     collector only works while an iteration allocates, so a tighter heap goal costs CPU inside
//     the iteration and nothing between, while the peak it lowers is what the host must reserve
//     all the time. The peak is ~(1 + GOGC/100) x the heap a collection finds live.
//   - GOMEMLIMIT from the cgroup: Go does not read the container's limit; without a soft limit
//     the heap grows past it and the kernel kills the process for garbage. Prometheus 3 derives
//     it from the cgroup (KimMachineGun/automemlimit, --auto-gomemlimit.ratio=0.9). drwatchd
//     uses 0.8: the binary's mapped pages (~40 MiB, docs/benchmarks.md) count against the cgroup
//     but not against GOMEMLIMIT, and at the 192 MiB a 1,000-endpoint unit is given they are a
//     fifth of it (Prometheus's limits are gigabytes, where a tenth covers its binary).
//
// The effective values are exported by the Go collector on /metrics (go_gc_gogc_percent,
// go_gc_gomemlimit_bytes) and logged at start.
package gcdefaults

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// GOGC is the collector's target percentage when the GOGC environment variable is unset.
const GOGC = 75

// LimitRatio is the share of the cgroup's memory limit given to GOMEMLIMIT when it is unset.
const LimitRatio = 0.8

// Where a setting came from.
const (
	SourceEnv     = "env"     // the operator's environment variable (the runtime applied it)
	SourceDefault = "default" // this package's default
	SourceCgroup  = "cgroup"  // LimitRatio x the cgroup's memory limit
	SourceNone    = "none"    // no limit: none set and no cgroup limit found
)

// Settings are the collector settings in force and where each came from.
type Settings struct {
	GOGC        int    // -1: off
	GOGCSource  string // SourceEnv or SourceDefault
	MemoryLimit int64  // bytes; math.MaxInt64: no limit
	LimitSource string // SourceEnv, SourceCgroup or SourceNone
	CgroupLimit int64  // the cgroup's memory limit in bytes (0: none found)
	// CgroupErr says why no cgroup limit could be read, when that was an error (not merely
	// "no limit"): the daemon logs it and runs without a soft limit.
	CgroupErr error
}

// Decide computes the settings from the environment (lookup, e.g. os.LookupEnv), the
// runtime's current values (what GOGC/GOMEMLIMIT in the environment already set), and the
// cgroup's limit (0: none; err: could not be read). It changes nothing.
func Decide(lookup func(string) (string, bool), curGOGC int, curLimit int64, cgroupLimit int64, cgroupErr error) Settings {
	s := Settings{GOGC: GOGC, GOGCSource: SourceDefault, CgroupLimit: cgroupLimit, CgroupErr: cgroupErr}
	if v, ok := lookup("GOGC"); ok && v != "" {
		s.GOGC, s.GOGCSource = curGOGC, SourceEnv
	}
	switch v, ok := lookup("GOMEMLIMIT"); {
	case ok && v != "":
		s.MemoryLimit, s.LimitSource = curLimit, SourceEnv
	case cgroupLimit > 0:
		s.MemoryLimit, s.LimitSource = int64(float64(cgroupLimit)*LimitRatio), SourceCgroup
	default:
		s.MemoryLimit, s.LimitSource = math.MaxInt64, SourceNone
	}
	return s
}

// Apply reads the cgroup's limit from fsys (the root file system: os.DirFS("/")), decides, and
// sets what is not the operator's: debug.SetGCPercent and debug.SetMemoryLimit.
func Apply(lookup func(string) (string, bool), fsys fs.FS) Settings {
	limit, err := CgroupMemoryLimit(fsys)
	s := Decide(lookup, Current().GOGC, debug.SetMemoryLimit(-1), limit, err)
	if s.GOGCSource == SourceDefault {
		debug.SetGCPercent(s.GOGC)
	}
	if s.LimitSource == SourceCgroup {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	return s
}

// Current is the runtime's collector settings now (runtime/metrics; nothing is changed). Only
// GOGC and MemoryLimit are filled.
func Current() Settings {
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	s := Settings{GOGC: -1, MemoryLimit: math.MaxInt64}
	if samples[0].Value.Kind() == metrics.KindUint64 {
		if v := samples[0].Value.Uint64(); v > 0 {
			s.GOGC = int(v) // 0 is how runtime/metrics says "off"
		}
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		s.MemoryLimit = int64(samples[1].Value.Uint64())
	}
	return s
}

// CgroupMemoryLimit is the memory limit of the calling process's cgroup in bytes, the
// smallest along its path to the root (a parent's limit binds its children); 0 when there is
// none (no cgroup file system, or "max"). cgroup v2 (memory.max) and v1 (the memory
// controller's memory.limit_in_bytes) are read from fsys, rooted at "/".
func CgroupMemoryLimit(fsys fs.FS) (int64, error) {
	raw, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // not Linux, or no /proc: no limit to follow
	}
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	var v1Path string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			continue
		}
		if id == "0" && ctrls == "" {
			if limit, ok, err := walk(fsys, "sys/fs/cgroup", path, "memory.max"); ok || err != nil {
				return limit, err
			}
			continue
		}
		for _, c := range strings.Split(ctrls, ",") {
			if c == "memory" {
				v1Path = path
			}
		}
	}
	if v1Path != "" {
		limit, _, err := walk(fsys, "sys/fs/cgroup/memory", v1Path, "memory.limit_in_bytes")
		return limit, err
	}
	return 0, nil
}

// walk reads file in root/path and each of its parents up to root, and returns the smallest
// limit found; ok says whether any of the files existed (the hierarchy is mounted there).
func walk(fsys fs.FS, root, path, file string) (limit int64, ok bool, err error) {
	path = strings.Trim(path, "/")
	for {
		dir := root
		if path != "" {
			dir += "/" + path
		}
		raw, rerr := fs.ReadFile(fsys, dir+"/"+file)
		switch {
		case errors.Is(rerr, fs.ErrNotExist):
		case rerr != nil:
			return 0, true, fmt.Errorf("read /%s/%s: %w", dir, file, rerr)
		default:
			ok = true
			n, perr := parseLimit(strings.TrimSpace(string(raw)))
			if perr != nil {
				return 0, true, fmt.Errorf("/%s/%s: %w", dir, file, perr)
			}
			if n > 0 && (limit == 0 || n < limit) {
				limit = n
			}
		}
		if path == "" {
			return limit, ok, nil
		}
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			path = path[:i]
		} else {
			path = ""
		}
	}
}

// unlimitedV1 is where cgroup v1 reports "no limit": the page-rounded maximum, above 2^62.
const unlimitedV1 = int64(1) << 62

// parseLimit reads a limit file's value: "max" (v2) or a figure at or above unlimitedV1 (v1)
// is no limit (0).
func parseLimit(v string) (int64, error) {
	if v == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a memory limit: %q", v)
	}
	if n >= unlimitedV1 || n < 0 {
		return 0, nil
	}
	return n, nil
}
