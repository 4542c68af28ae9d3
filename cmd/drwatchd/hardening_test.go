package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
	if err := os.WriteFile(path, bytes.Repeat([]byte("# padding\n"), 200_000), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "larger than 1048576 bytes") {
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
