// Package observability_test proves what SREs see and what pages them with the real Prometheus
// tools: promtool on the alerting rules and on a real scrape, every metric the rules and the
// dashboard use exported by a running daemon, a real Prometheus and Alertmanager paging on the
// simulated outage, and the status page rendered by headless Chromium.
//
// Tools come from Debian (`make test-deps`: prometheus, prometheus-alertmanager, chromium). A
// test that needs a missing tool skips and says which; nothing else skips.
package observability_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the module root (two levels above this package).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

func repoPath(t testing.TB, parts ...string) string {
	return filepath.Join(append([]string{repoRoot(t)}, parts...)...)
}

// lookTool returns the first of names found in PATH, or skips the test naming the package that
// provides it.
func lookTool(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skipf("%s not installed (Debian package %s; `make test-deps` installs it as root)", strings.Join(names, " / "), pkg)
	return ""
}

func promtool(t testing.TB) string { return lookTool(t, "prometheus", "promtool") }

// runTool runs a command to completion within timeout and returns its combined output.
func runTool(t testing.TB, timeout time.Duration, dir string, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %s: %w", filepath.Base(name), timeout, ctx.Err())
	}
	return string(out), err
}

// logBuffer collects a process's output (bounded) for failure messages and log scans.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 8<<20 { // keep memory bounded: the head has what we scan for
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// proc is a long-running child process, stopped (SIGTERM, then SIGKILL of its process group)
// by t.Cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuffer{}, done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		pid := cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.done
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL) // any child left in the group
		if t.Failed() {
			t.Logf("--- %s output (tail) ---\n%s", name, tail(p.out.String(), 6000))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freePort returns a loopback port that was free a moment ago (for tools that cannot report
// the port they bound).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pollUntil calls f every interval until it returns true, f returns an error, the deadline
// passes or one of the watched processes exits. It fails the test on timeout with what.
func pollUntil(t *testing.T, timeout time.Duration, what string, f func() (bool, error), watch ...*proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := f()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		for _, p := range watch {
			if p.exited() {
				t.Fatalf("waiting for %s: %s exited (%v); output:\n%s", what, p.name, p.err, tail(p.out.String(), 6000))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s (last error: %v)", what, timeout, last)
		}
		<-tick.C
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp.StatusCode, b, err
}

// httpOK reports whether url answers 200.
func httpOK(url string) func() (bool, error) {
	return func() (bool, error) {
		code, _, err := httpGet(url)
		if err != nil {
			return false, err
		}
		return code == http.StatusOK, fmt.Errorf("%s: HTTP %d", url, code)
	}
}

// --- metric names ---------------------------------------------------------------------------

var drwatchdName = regexp.MustCompile(`\bdrwatchd_[a-z0-9_]*[a-z0-9]`)

// metricNamesIn returns the drwatchd_* metric names a PromQL expression uses.
func metricNamesIn(expr string) []string { return drwatchdName.FindAllString(expr, -1) }

// sampleNames returns every sample name of a text exposition (histograms give _bucket, _sum,
// _count) and the families declared by # TYPE lines with their type.
func sampleNames(expo []byte) (samples map[string]bool, types map[string]string) {
	samples, types = map[string]bool{}, map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(expo))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			if len(f) == 4 {
				types[f[2]] = f[3]
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(name, "{ "); i >= 0 {
			name = name[:i]
		}
		samples[name] = true
	}
	return samples, types
}

// declared is a metric declared in the daemon's Go source.
type declared struct {
	Name string
	Kind string // Counter, Gauge, Histogram, Summary
	Vec  bool   // labelled: its series appear only once a label combination is used
	Pos  string
}

var constructor = regexp.MustCompile(`^New(Counter|Gauge|Histogram|Summary)(Vec|Func)?$`)

// declaredMetrics parses every non-test Go file under pkg/ and cmd/ and returns the metrics
// constructed there (`f.NewGaugeVec(prometheus.GaugeOpts{Name: "drwatchd_..."}, ...)`, or a
// collector's `prometheus.NewDesc("drwatchd_...", ...)`).
func declaredMetrics(t testing.TB) map[string]declared {
	t.Helper()
	out := map[string]declared{}
	fset := token.NewFileSet()
	for _, dir := range []string{"pkg", "cmd"} {
		err := filepath.WalkDir(repoPath(t, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil // a file mid-edit by someone else; the build tests catch it
			}
			ast.Inspect(f, func(n ast.Node) bool {
				// A gauge of a gauges.Table (gauges.Opts{Name: "drwatchd_...", Help: ...}): a
				// labelled gauge family built at scrape time.
				if lit, ok := n.(*ast.CompositeLit); ok {
					if sel, ok := lit.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Opts" {
						if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "gauges" {
							for _, el := range lit.Elts {
								kv, ok := el.(*ast.KeyValueExpr)
								if !ok {
									continue
								}
								if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "Name" {
									continue
								}
								if bl, ok := kv.Value.(*ast.BasicLit); ok && bl.Kind == token.STRING {
									name, err := strconv.Unquote(bl.Value)
									if err == nil && strings.HasPrefix(name, "drwatchd_") {
										rel, _ := filepath.Rel(repoRoot(t), fset.Position(bl.Pos()).Filename)
										out[name] = declared{Name: name, Kind: "Gauge", Vec: true, Pos: fmt.Sprintf("%s:%d", rel, fset.Position(bl.Pos()).Line)}
									}
								}
							}
						}
					}
					return true
				}
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if sel.Sel.Name == "NewDesc" {
					// A collector's family (prometheus.NewDesc("drwatchd_...", help, labels, nil)):
					// a Desc carries no type, so the naming rule gives it (_total: a counter).
					if bl, ok := call.Args[0].(*ast.BasicLit); ok && bl.Kind == token.STRING {
						name, err := strconv.Unquote(bl.Value)
						if err == nil && strings.HasPrefix(name, "drwatchd_") {
							kind := "Gauge"
							if strings.HasSuffix(name, "_total") {
								kind = "Counter"
							}
							rel, _ := filepath.Rel(repoRoot(t), fset.Position(bl.Pos()).Filename)
							out[name] = declared{Name: name, Kind: kind, Vec: true, Pos: fmt.Sprintf("%s:%d", rel, fset.Position(bl.Pos()).Line)}
						}
					}
					return true
				}
				m := constructor.FindStringSubmatch(sel.Sel.Name)
				if m == nil {
					return true
				}
				arg := call.Args[0]
				if u, ok := arg.(*ast.UnaryExpr); ok {
					arg = u.X
				}
				lit, ok := arg.(*ast.CompositeLit)
				if !ok {
					return true
				}
				for _, el := range lit.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "Name" {
						continue
					}
					if bl, ok := kv.Value.(*ast.BasicLit); ok && bl.Kind == token.STRING {
						name, err := strconv.Unquote(bl.Value)
						if err == nil && strings.HasPrefix(name, "drwatchd_") {
							rel, _ := filepath.Rel(repoRoot(t), fset.Position(bl.Pos()).Filename)
							out[name] = declared{Name: name, Kind: m[1], Vec: m[2] == "Vec", Pos: fmt.Sprintf("%s:%d", rel, fset.Position(bl.Pos()).Line)}
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatal("no drwatchd_ metric declarations found under pkg/ and cmd/")
	}
	return out
}

// resolveDeclared maps a sample name to its declared family (histogram suffixes stripped).
func resolveDeclared(decl map[string]declared, name string) (declared, bool) {
	if d, ok := decl[name]; ok {
		return d, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if d, ok := decl[base]; ok && (d.Kind == "Histogram" || (d.Kind == "Summary" && suf != "_bucket")) {
				return d, true
			}
		}
	}
	return declared{}, false
}

// documentedMetrics returns the metric names in the first column of docs/metrics.md's tables.
func documentedMetrics(t testing.TB) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\| `(drwatchd_[a-z0-9_]+)` \\|")
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = true
	}
	if len(out) == 0 {
		t.Fatal("docs/metrics.md: no metric rows found")
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- the rule and dashboard files -----------------------------------------------------------

// ruleFile is the subset of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboardExprs returns every "expr" string in the dashboard JSON (panels, nested panels,
// annotations), with the JSON path of each.
func dashboardExprs(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && k == "expr" {
				out[path+"."+k] = s
				continue
			}
			dashboardExprs(val, path+"."+k, out)
		}
	case []any:
		for i, val := range x {
			dashboardExprs(val, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// grafanaVars replaces the dashboard variables a query may contain with values Prometheus
// accepts.
func grafanaVars(expr string, rateInterval string) string {
	r := strings.NewReplacer("$__rate_interval", rateInterval, "$__interval", rateInterval, "${service}", ".+", "$service", ".+")
	return r.Replace(expr)
}
