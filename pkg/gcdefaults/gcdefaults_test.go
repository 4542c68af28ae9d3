package gcdefaults

import (
	"errors"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDecide(t *testing.T) {
	const mib = 1 << 20
	readErr := errors.New("read /proc/self/cgroup: permission denied")
	for _, tc := range []struct {
		name        string
		env         func(string) (string, bool)
		curGOGC     int
		curLimit    int64
		cgroup      int64
		cgroupErr   error
		wantGOGC    int
		wantGCSrc   string
		wantLimit   int64
		wantLimSrc  string
		wantCgroupE bool
	}{
		{name: "nothing set, no cgroup limit: GOGC 75, no limit", env: env(), curGOGC: 100, curLimit: math.MaxInt64,
			wantGOGC: 75, wantGCSrc: SourceDefault, wantLimit: math.MaxInt64, wantLimSrc: SourceNone},
		{name: "nothing set, 512 MiB cgroup: 0.8 of it, rounded down", env: env(), curGOGC: 100, curLimit: math.MaxInt64, cgroup: 512 * mib,
			wantGOGC: 75, wantGCSrc: SourceDefault, wantLimit: 429496729, wantLimSrc: SourceCgroup},
		{name: "GOGC set by the operator wins", env: env("GOGC", "200"), curGOGC: 200, curLimit: math.MaxInt64,
			wantGOGC: 200, wantGCSrc: SourceEnv, wantLimit: math.MaxInt64, wantLimSrc: SourceNone},
		{name: "GOGC=off is the operator's", env: env("GOGC", "off"), curGOGC: -1, curLimit: math.MaxInt64,
			wantGOGC: -1, wantGCSrc: SourceEnv, wantLimit: math.MaxInt64, wantLimSrc: SourceNone},
		{name: "an empty GOGC is unset", env: env("GOGC", ""), curGOGC: 100, curLimit: math.MaxInt64,
			wantGOGC: 75, wantGCSrc: SourceDefault, wantLimit: math.MaxInt64, wantLimSrc: SourceNone},
		{name: "GOMEMLIMIT set by the operator wins over the cgroup", env: env("GOMEMLIMIT", "300MiB"), curGOGC: 100,
			curLimit: 300 * mib, cgroup: 512 * mib,
			wantGOGC: 75, wantGCSrc: SourceDefault, wantLimit: 300 * mib, wantLimSrc: SourceEnv},
		{name: "both set: nothing of ours", env: env("GOGC", "50", "GOMEMLIMIT", "1GiB"), curGOGC: 50, curLimit: 1 << 30,
			cgroup: 512 * mib, wantGOGC: 50, wantGCSrc: SourceEnv, wantLimit: 1 << 30, wantLimSrc: SourceEnv},
		{name: "cgroup unreadable: no limit, the error kept", env: env(), curGOGC: 100, curLimit: math.MaxInt64,
			cgroupErr: readErr, wantGOGC: 75, wantGCSrc: SourceDefault, wantLimit: math.MaxInt64, wantLimSrc: SourceNone,
			wantCgroupE: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Decide(tc.env, tc.curGOGC, tc.curLimit, tc.cgroup, tc.cgroupErr)
			if s.GOGC != tc.wantGOGC || s.GOGCSource != tc.wantGCSrc {
				t.Errorf("GOGC = %d (%s), want %d (%s)", s.GOGC, s.GOGCSource, tc.wantGOGC, tc.wantGCSrc)
			}
			if s.MemoryLimit != tc.wantLimit || s.LimitSource != tc.wantLimSrc {
				t.Errorf("limit = %d (%s), want %d (%s)", s.MemoryLimit, s.LimitSource, tc.wantLimit, tc.wantLimSrc)
			}
			if s.CgroupLimit != tc.cgroup || (s.CgroupErr != nil) != tc.wantCgroupE {
				t.Errorf("cgroup = %d, %v; want %d, error %v", s.CgroupLimit, s.CgroupErr, tc.cgroup, tc.wantCgroupE)
			}
		})
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name    string
		fs      fstest.MapFS
		want    int64
		wantErr string
	}{
		{name: "no /proc: no limit", fs: fstest.MapFS{}, want: 0},
		{name: "v2, container namespace (path /)", fs: fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("536870912\n"),
		}, want: 536870912},
		{name: "v2, systemd unit with MemoryMax", fs: fstest.MapFS{
			"proc/self/cgroup": file("0::/system.slice/drwatchd.service\n"),
			"sys/fs/cgroup/system.slice/drwatchd.service/memory.max": file("201326592\n"),
			"sys/fs/cgroup/system.slice/memory.max":                  file("max\n"),
		}, want: 201326592},
		{name: "v2, a parent's lower limit binds", fs: fstest.MapFS{
			"proc/self/cgroup":                           file("0::/kubepods/pod1/ctr\n"),
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": file("max\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":     file("268435456\n"),
			"sys/fs/cgroup/kubepods/memory.max":          file("1073741824\n"),
		}, want: 268435456},
		{name: "v2, max everywhere: no limit", fs: fstest.MapFS{
			"proc/self/cgroup":                    file("0::/user.slice\n"),
			"sys/fs/cgroup/user.slice/memory.max": file("max\n"),
		}, want: 0},
		{name: "v1 memory controller", fs: fstest.MapFS{
			"proc/self/cgroup": file("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n"),
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": file("134217728\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            file("9223372036854771712\n"),
		}, want: 134217728},
		{name: "v1 unlimited", fs: fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, want: 0},
		{name: "v2 listed, hierarchy not mounted, v1 memory mounted", fs: fstest.MapFS{
			"proc/self/cgroup": file("4:memory:/x\n0::/x\n"),
			"sys/fs/cgroup/memory/x/memory.limit_in_bytes": file("104857600\n"),
		}, want: 104857600},
		{name: "garbage in memory.max is an error naming the file", fs: fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("lots\n"),
		}, wantErr: `/sys/fs/cgroup/memory.max: not a memory limit: "lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CgroupMemoryLimit(tc.fs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CgroupMemoryLimit = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestApplySetsRuntimeAndMetrics applies the defaults to this process and reads them back
// from the runtime and from the Go collector's families on /metrics.
func TestApplySetsRuntimeAndMetrics(t *testing.T) {
	prevGC, prevLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })

	fsys := fstest.MapFS{
		"proc/self/cgroup":         &fstest.MapFile{Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": &fstest.MapFile{Data: []byte("536870912\n")},
	}
	s := Apply(env(), fsys)
	want := int64(429496729) // 0.8 x 512 MiB, rounded down
	if s.GOGC != 75 || s.MemoryLimit != want || s.LimitSource != SourceCgroup {
		t.Fatalf("Apply = %+v, want GOGC 75 and limit %d from the cgroup", s, want)
	}
	if cur := Current(); cur.GOGC != 75 || cur.MemoryLimit != want {
		t.Fatalf("runtime now GOGC %d, limit %d; want 75, %d", cur.GOGC, cur.MemoryLimit, want)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if n := mf.GetName(); n == "go_gc_gogc_percent" || n == "go_gc_gomemlimit_bytes" {
			got[n] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if got["go_gc_gogc_percent"] != 75 || got["go_gc_gomemlimit_bytes"] != float64(want) {
		t.Fatalf("/metrics shows %v, want go_gc_gogc_percent 75 and go_gc_gomemlimit_bytes %d", got, want)
	}

	// The operator's settings are left alone: GOGC and GOMEMLIMIT in the environment.
	debug.SetGCPercent(120)
	debug.SetMemoryLimit(300 << 20)
	s = Apply(env("GOGC", "120", "GOMEMLIMIT", "300MiB"), fsys)
	if s.GOGC != 120 || s.GOGCSource != SourceEnv || s.MemoryLimit != 300<<20 || s.LimitSource != SourceEnv {
		t.Fatalf("Apply with the operator's settings = %+v, want them reported as the environment's", s)
	}
	if cur := Current(); cur.GOGC != 120 || cur.MemoryLimit != 300<<20 {
		t.Fatalf("runtime now GOGC %d, limit %d; want the operator's 120, %d", cur.GOGC, cur.MemoryLimit, 300<<20)
	}
}
