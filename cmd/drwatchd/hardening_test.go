package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// check-config rejects a fractional replica count and a 1ns loop interval, naming both paths
// (issue 16, item 11): yaml.v3 alone truncates 4.5 to 4, and 1ns is above zero.
func TestCheckConfigRejectsFractionsAndTinyDurations(t *testing.T) {
	ex, err := os.ReadFile(repoFile(t, "deploy/examples/drwatchd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(ex)
	for old, repl := range map[string]string{
		"\n  interval: 10s": "\n  interval: 1ns",
		"production: 6":     "production: 4.5",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("the example config no longer has %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"loop.interval: 1ns is below the minimum 1s", "services[0].regions[0].replicas.production: expected an integer, got 4.5"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

// A config file far above any real one is refused without being read whole.
func TestCheckConfigRefusesHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.yaml")
	if err := os.WriteFile(path, bytes.Repeat([]byte("# padding\n"), config.MaxConfigBytes/10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), fmt.Sprintf("larger than %d bytes", config.MaxConfigBytes)) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// Every drwatchd command named in the example config's comments exists, and the one that checks
// the file accepts it as written (issue 16, item 13: it named "drwatchd check -config").
func TestExampleConfigNamesRealCommands(t *testing.T) {
	path := repoFile(t, "deploy/examples/drwatchd.yaml")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := map[string]bool{}
	for _, c := range commands() {
		known[c.name] = true
	}
	cmdRE := regexp.MustCompile(`\bdrwatchd ([a-z][a-z-]*)((?: -{1,2}[a-z-]+| [a-z./-]+\.yaml)+)`)
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range cmdRE.FindAllStringSubmatch(line, -1) {
			found++
			if !known[m[1]] {
				t.Errorf("the example names %q, not a drwatchd command: %s", "drwatchd "+m[1], line)
				continue
			}
			if m[1] == "check-config" {
				var out, errb bytes.Buffer
				if code := run([]string{"check-config", path}, &out, &errb); code != 0 {
					t.Errorf("drwatchd check-config on the example: exit %d: %s", code, errb.String())
				}
				if strings.Contains(m[2], "-config") {
					t.Errorf("check-config takes the file as an argument, not -config: %s", line)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("the example config's header names no drwatchd command to check it with")
	}
}

// `make fuzz` fuzzes for its minute instead of minimising one input: go test minimises every new
// interesting input for -fuzzminimizetime, 60s by default, which is the whole budget (issue 16,
// item 13: "execs: 6" for the minute). The recipe must bound minimisation well below -fuzztime.
func TestMakeFuzzBoundsMinimisation(t *testing.T) {
	mk, err := os.ReadFile(repoFile(t, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^fuzz:.*\n\t(.*)$`)
	m := re.FindStringSubmatch(string(mk))
	if m == nil {
		t.Fatal("no fuzz target in the Makefile")
	}
	recipe := m[1]
	dur := func(flag string) time.Duration {
		fm := regexp.MustCompile(`-` + flag + `[ =](\S+)`).FindStringSubmatch(recipe)
		if fm == nil {
			t.Fatalf("the fuzz recipe does not set -%s: %s", flag, recipe)
		}
		d, err := time.ParseDuration(fm[1])
		if err != nil {
			t.Fatalf("-%s %s: %v", flag, fm[1], err)
		}
		return d
	}
	total, minimise := dur("fuzztime"), dur("fuzzminimizetime")
	if minimise*10 > total {
		t.Fatalf("-fuzzminimizetime %s is more than a tenth of -fuzztime %s: one input's minimisation eats the run", minimise, total)
	}
}

// The daemon refuses to start on a state file holding a state it does not know, naming the file
// and the field (issue 16, item 4): before, it started, never evaluated the service again, and
// said it was ready with every state gauge at 0.
func TestRunRefusesUnknownStateName(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drwatchd.yaml")
	writeSimConfig(t, cfgPath, "5s")
	statePath := filepath.Join(dir, "state.json")
	doc := `{"token":0,"doc":{"version":1,"services":{"fraud-scorer":{"service":"fraud-scorer","state":"frobbed","primary":"us-central1","active":"us-central1"}}}}`
	if err := os.WriteFile(statePath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, errb := runExpectingRefusal(t, runFlags{config: cfgPath, sim: true, speed: 50, logFormat: "json"})
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errb)
	}
	for _, want := range []string{statePath, `services.fraud-scorer.state: unknown state \"frobbed\"`} {
		if !strings.Contains(errb, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
}

// A second daemon on the same state file refuses to start, naming the file and the holder
// (issue 16, item 7): two processes sharing one file both failed over.
func TestRunRefusesSharedStateFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drwatchd.yaml")
	writeSimConfig(t, cfgPath, "5s")
	first := startDaemon(t, runFlags{config: cfgPath, sim: true, speed: 50, logFormat: "json"})
	defer func() {
		first.sigs <- syscall.SIGTERM
		if code := <-first.done; code != 0 {
			t.Errorf("first daemon exit %d:\n%s", code, first.stderr.String())
		}
	}()
	code, errb := runExpectingRefusal(t, runFlags{config: cfgPath, sim: true, speed: 50, logFormat: "json", listen: "127.0.0.1:0"})
	if code != 1 {
		t.Fatalf("second daemon on the same state file: exit %d, want 1:\n%s", code, errb)
	}
	want := "state file " + filepath.Join(dir, "state.json") + " is locked by another drwatchd (pid "
	if !strings.Contains(errb, want) {
		t.Fatalf("stderr lacks %q:\n%s", want, errb)
	}
}

// runExpectingRefusal runs the daemon and returns its exit code and stderr when it refuses to
// start. One that starts serving instead is stopped (SIGTERM) and reported as code -1.
func runExpectingRefusal(t *testing.T, f runFlags) (int, string) {
	t.Helper()
	var out, errb syncBuffer
	sigs, started, done := make(chan os.Signal, 1), make(chan string, 1), make(chan int, 1)
	f.signals, f.started = sigs, started
	go func() { done <- runDaemon(context.Background(), f, &out, &errb) }()
	select {
	case code := <-done:
		return code, errb.String()
	case <-started:
		sigs <- syscall.SIGTERM
		<-done
		return -1, "started serving instead of refusing:\n" + errb.String()
	case <-time.After(60 * time.Second):
		t.Fatalf("neither refused nor started within 60s:\n%s", errb.String())
	}
	return -1, ""
}

// A world-readable admin token file and a non-loopback admin listener (no TLS of its own) are
// warned about at start (issue 16, item 9: both passed silently).
func TestRunWarnsAboutExposedAdminToken(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drwatchd.yaml")
	writeSimConfig(t, cfgPath, "5s")
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tok, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := mustRead(t, cfgPath)
	if !strings.Contains(cfg, "admin:\n  enabled: false\n") {
		t.Fatal("the demo config no longer has the admin section this test rewrites")
	}
	cfg = strings.Replace(cfg, "admin:\n  enabled: false\n", "admin:\n  enabled: true\n  listen: 0.0.0.0:0\n  token_file: "+tok+"\n", 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errb := runExpectingRefusal(t, runFlags{config: cfgPath, sim: true, speed: 50, logFormat: "json"})
	for _, want := range []string{"admin.token_file is readable by other users (mode 0644)", "admin.listen is not a loopback address and the admin API has no TLS"} {
		if !strings.Contains(errb, want) {
			t.Errorf("no warning %q:\n%s", want, errb)
		}
	}
}

// SIGHUP applies what it can — the admin token file (a leaked token is rotated without a
// restart), the log level — and reports "restart required" (log and metric) for what it cannot,
// here the public listen address, instead of claiming success (issue 16, item 5).
func TestReloadRotatesTokenAndReportsRestartRequired(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drwatchd.yaml")
	writeSimConfig(t, cfgPath, "5s")
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "log:\n  level: info\n" + strings.Replace(mustRead(t, cfgPath), "admin:\n  enabled: false\n", "admin:\n  enabled: true\n  listen: 127.0.0.1:0\n  token_file: "+tok+"\n", 1)
	if err := os.WriteFile(cfgPath, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startDaemon(t, runFlags{config: cfgPath, sim: true, speed: 50, logFormat: "json"})
	defer func() {
		r.sigs <- syscall.SIGTERM
		<-r.done
	}()
	m := regexp.MustCompile(`"admin API listening","addr":"([^"]+)"`).FindStringSubmatch(r.stderr.String())
	if m == nil {
		t.Fatalf("admin address not logged:\n%s", r.stderr.String())
	}
	adminStatus := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+m[1]+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if adminStatus("old-token") != http.StatusOK {
		t.Fatal("old token refused before the rotation")
	}
	// Rotate the token, raise the log level, move the public listener.
	if err := os.WriteFile(tok, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(base, "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:18099\n", 1) // server.listen (first)
	next = strings.Replace(next, "level: info", "level: debug", 1)
	if next == base || !strings.Contains(next, "level: debug") {
		t.Fatal("the demo config no longer has the lines this test rewrites")
	}
	if err := os.WriteFile(cfgPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	r.sigs <- syscall.SIGHUP
	pub := "http://" + r.addr
	waitFor(t, 20*time.Second, "reload counted", func() bool {
		return strings.Contains(get(t, pub+"/metrics"), `drwatchd_config_reloads_total{result="success"} 1`)
	})
	if c := adminStatus("old-token"); c != http.StatusUnauthorized {
		t.Errorf("old token after the reload: %d, want 401", c)
	}
	if c := adminStatus("new-token"); c != http.StatusOK {
		t.Errorf("new token after the reload: %d, want 200", c)
	}
	if !strings.Contains(get(t, pub+"/metrics"), "drwatchd_config_restart_required 1") {
		t.Error("drwatchd_config_restart_required is not 1 after a changed server.listen")
	}
	logs := r.stderr.String()
	for _, want := range []string{`"restart_required":["server.listen"]`, `"log.level"`, `"admin.token_file"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}
