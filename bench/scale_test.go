package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// TestMain lets the test binary serve as the world child of the loop benchmarks, like the bench
// binary does.
func TestMain(m *testing.M) {
	serveWorldIfChild()
	os.Exit(m.Run())
}

// BenchmarkLoop is one daemon loop iteration over N endpoints against the simulated cloud (in a
// child process): go test -run XXX -bench Loop -benchtime 3x ./bench
func BenchmarkLoop(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			ctx := context.Background()
			e, err := newLoopEnv(ctx, b.TempDir(), n)
			if err != nil {
				b.Fatal(err)
			}
			defer e.close()
			if err := e.d.Tick(ctx); err != nil { // warm-up
				b.Fatal(err)
			}
			list0, _ := e.w.listCalls()
			b.ReportAllocs()
			b.ResetTimer()
			loops := 0
			for b.Loop() {
				if err := e.d.Tick(ctx); err != nil {
					b.Fatal(err)
				}
				loops++
			}
			b.StopTimer()
			list1, _ := e.w.listCalls()
			b.ReportMetric(float64(list1-list0)/float64(loops), "ListTimeSeries/op")
		})
	}
}

// The generated configs are valid and watch exactly N endpoints.
func TestScaleConfig(t *testing.T) {
	for _, n := range []int{10, 1000} {
		raw := scaleConfig(n, "127.0.0.1:0")
		lookup := func(k string) (string, bool) { return "http://127.0.0.1:1", true }
		cfg, err := config.Parse(raw, config.WithLookupEnv(lookup))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		eps, ids := 0, map[string]bool{}
		for _, s := range cfg.Services {
			for _, r := range s.Regions {
				eps++
				ids[r.EndpointID] = true
			}
		}
		if eps != n || len(ids) != n {
			t.Fatalf("n=%d: %d endpoints, %d distinct", n, eps, len(ids))
		}
	}
	var v map[string]any
	if err := yaml.Unmarshal(scaleConfig(4, "x"), &v); err != nil || !strings.Contains(fmt.Sprint(v["services"]), "svc-00001") {
		t.Fatalf("%v %v", err, v)
	}
}

func TestMarkdownMarksTargets(t *testing.T) {
	r := results{Scale: []scaleRow{
		{Endpoints: 10, Services: 5, Logical: 3, ListCalls: 3, CPUPerLoop: 1e6, SelfRSS: 50 << 20, SelfHWMReset: true},
		{Endpoints: 1000, Services: 500, Logical: 3, ListCalls: 3, CPUPerLoop: 60e6, SelfRSS: 90 << 20, SelfHWMReset: true},
		{Endpoints: 10000, Services: 5000, Logical: 3, ListCalls: 15, CPUPerLoop: 140e6, SelfRSS: 190 << 20, SelfHWMReset: true},
	}}
	md := r.markdown()
	for _, w := range []string{"| Monitoring calls per loop flat", "**PASS**",
		"1,000 endpoints: loop CPU < 50.0 ms | 60.0 ms | **FAIL**", "1,000 endpoints: peak RSS < 80 MiB (the daemon) | 90.0 MiB",
		"10,000 endpoints: loop CPU < 150.0 ms | 140.0 ms | **PASS**", "10,000 endpoints: peak RSS < 200 MiB (the daemon) | 190.0 MiB",
		"comparison table is produced by `make bench`"} {
		if !strings.Contains(md, w) {
			t.Fatalf("markdown lacks %q:\n%s", w, md)
		}
	}
}
