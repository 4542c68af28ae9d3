package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckConfigExampleIsValid(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"check-config", repoFile(t, "deploy/examples/drwatchd.yaml")}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// A file with five distinct mistakes: check-config exits non-zero and names all five paths.
func TestCheckConfigNamesEveryMistake(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"check-config", repoFile(t, "pkg/config/testdata/five-mistakes.yaml")}, &out, &errb)
	if code == 0 {
		t.Fatalf("exit 0 for a bad config; stderr %q", errb.String())
	}
	for _, path := range []string{
		"loop.interval", "leader.renew", "services[0].regions[0].probe.timout",
		"services[0].regions[1].role", "services[0].shift.steps[2]",
	} {
		if !strings.Contains(errb.String(), path+":") {
			t.Errorf("stderr does not name %s:\n%s", path, errb.String())
		}
	}
	if !strings.Contains(errb.String(), "5 problems") {
		t.Errorf("want a count of 5 problems:\n%s", errb.String())
	}
}

func TestUsageAndUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "check-config") {
		t.Fatalf("no args: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown: exit %d, %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "drwatchd ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
}

// writeSimConfig writes the demo config with a loopback listener, a private state file and the
// given loop interval.
func writeSimConfig(t *testing.T, path, interval string) {
	t.Helper()
	cfg := strings.Replace(string(config.DemoYAML), "listen: 127.0.0.1:8080", "listen: 127.0.0.1:0", 1)
	cfg = strings.Replace(cfg, "interval: 5s\n", "interval: "+interval+"\n", 1)
	cfg = strings.Replace(cfg, "${DRWATCHD_SIM_STATE:-/tmp/drwatchd-sim-state.json}", filepath.Join(filepath.Dir(path), "state.json"), 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The daemon in-process on the simulated cloud: ready, scraped, reloaded with a good and then a
// bad config (the old one stays), and stopped by SIGTERM within the shutdown bound.
func TestDaemonLifecycle(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drwatchd.yaml")
	writeSimConfig(t, cfgPath, "5s")
	if !strings.Contains(mustRead(t, cfgPath), "listen: 127.0.0.1:0") {
		t.Fatal("demo config no longer has the listen line this test rewrites")
	}

	r := startDaemon(t, runFlags{config: cfgPath, sim: true, speed: 50, logFormat: "json"})
	sigs, done, stderr := r.sigs, r.done, r.stderr
	base := "http://" + r.addr

	waitFor(t, 30*time.Second, "/readyz 200", func() bool { return status(base+"/readyz") == http.StatusOK })
	metrics := get(t, base+"/metrics")
	for _, want := range []string{
		"drwatchd_build_info{", "drwatchd_service_state{service=\"fraud-scorer\",state=\"healthy\"} 1",
		"drwatchd_config_last_reload_successful 1", "go_goroutines", "process_resident_memory_bytes",
		"drwatchd_region_verdict{", "go_gc_gogc_percent ", "go_gc_gomemlimit_bytes ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The collector's settings are logged at start with where each came from (gcdefaults).
	if log := stderr.String(); !strings.Contains(log, `"message":"garbage collector"`) || !strings.Contains(log, `"gogc_source":`) {
		t.Errorf("the garbage collector's settings are not logged at start:\n%s", log)
	}

	// A valid new config: reloaded.
	writeSimConfig(t, cfgPath, "6s")
	sigs <- syscall.SIGHUP
	waitFor(t, 20*time.Second, "reload success counted", func() bool {
		return strings.Contains(get(t, base+"/metrics"), `drwatchd_config_reloads_total{result="success"} 1`)
	})
	// An invalid one: rejected, counted, the old config stays in force and the daemon serves.
	if err := os.WriteFile(cfgPath, []byte("services: [{name: BAD}]\nloop: {interval: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sigs <- syscall.SIGHUP
	waitFor(t, 20*time.Second, "reload failure counted", func() bool {
		m := get(t, base+"/metrics")
		return strings.Contains(m, `drwatchd_config_reloads_total{result="failure"} 1`) &&
			strings.Contains(m, "drwatchd_config_last_reload_successful 0")
	})
	if !strings.Contains(stderr.String(), "config reload rejected") || status(base+"/readyz") != http.StatusOK {
		t.Fatalf("bad reload not logged, or the daemon stopped serving:\n%s", stderr.String())
	}

	// SIGTERM: a clean exit within the shutdown bound (server.shutdown_timeout, 10s by default,
	// plus one loop iteration).
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("not stopped within the bound:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped cleanly") {
		t.Fatalf("no clean stop logged:\n%s", stderr.String())
	}
	if status(base+"/healthz") != 0 {
		t.Fatal("the HTTP server still answers after shutdown")
	}
}

// The hardened unit verifies with systemd-analyze (with the binary path pointing at a real
// build, since verify checks that ExecStart is executable).
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (make test-deps installs the systemd package): cannot verify the unit here")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "drwatchd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	unit := strings.ReplaceAll(mustRead(t, repoFile(t, "systemd/drwatchd.service")), "/usr/local/bin/drwatchd", bin)
	for _, want := range []string{"Type=notify", "WatchdogSec=", "DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=drwatchd", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "Restart=on-failure"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	path := filepath.Join(dir, "drwatchd.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// running is a daemon started in-process by startDaemon.
type running struct {
	addr           string
	sigs           chan os.Signal
	done           chan int
	stdout, stderr *syncBuffer
}

// startDaemon runs runDaemon with f in the background (signals from the returned channel, not
// the process) and waits until it serves.
func startDaemon(t *testing.T, f runFlags) running {
	t.Helper()
	r := running{sigs: make(chan os.Signal, 1), done: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	started := make(chan string, 1)
	f.signals, f.started = r.sigs, started
	go func() { r.done <- runDaemon(context.Background(), f, r.stdout, r.stderr) }()
	select {
	case r.addr = <-started:
	case code := <-r.done:
		t.Fatalf("daemon exited early with %d:\n%s", code, r.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon did not start:\n%s", r.stderr.String())
	}
	return r
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func status(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds or the bound passes (a deadline, not a sleep-and-hope).
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// `drwatchd run --sim` (the README's first command, here faster than its default speed) shows
// the primary's outage failed over, in its console timeline, its logs and /metrics.
func TestSimDemoShowsFailover(t *testing.T) {
	t.Setenv("DRWATCHD_SIM_STATE", filepath.Join(t.TempDir(), "state.json"))
	r := startDaemon(t, runFlags{sim: true, speed: 30, listen: "127.0.0.1:0", logFormat: "console"})
	sigs, done, stdout, stderr, addr := r.sigs, r.done, r.stdout, r.stderr, r.addr
	waitFor(t, 90*time.Second, "failed-over in /metrics", func() bool {
		return strings.Contains(get(t, "http://"+addr+"/metrics"), `drwatchd_service_state{service="fraud-scorer",state="failed-over"} 1`)
	})
	m := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`drwatchd_failovers_total{kind="failover",result="completed",service="fraud-scorer"} 1`,
		`drwatchd_traffic_weight_percent{region="us-east1",service="fraud-scorer"} 100`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	sigs <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	out, logs := stdout.String(), stderr.String()
	for _, want := range []string{"us-central1 DOWN", "us-east1 100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("console timeline lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"failover started", "failover completed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}
