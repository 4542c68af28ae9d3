package failover

import (
	"os/exec"
	"strings"
	"testing"
)

// corePackages are the decision core: pure functions of state, observations and now.
var corePackages = []string{
	"github.com/drwatchd/drwatchd/pkg/failover",
	"github.com/drwatchd/drwatchd/pkg/traffic/plan",
}

// purePackages are drwatchd's own packages the core may import: types, the health evaluator and
// the config schema with its strict YAML decoder. Their I/O counterparts (pkg/health/poll, pkg/checkpoint/track) are not here.
var purePackages = map[string]bool{
	"github.com/drwatchd/drwatchd/pkg/failover":     true,
	"github.com/drwatchd/drwatchd/pkg/traffic/plan": true,
	"github.com/drwatchd/drwatchd/pkg/health":       true,
	"github.com/drwatchd/drwatchd/pkg/checkpoint":   true,
	"github.com/drwatchd/drwatchd/pkg/config":       true,
	"github.com/drwatchd/drwatchd/pkg/yamlx":        true,
}

// thirdParty are the only non-standard, non-drwatchd modules the core may import.
var thirdParty = map[string]bool{
	"gopkg.in/yaml.v3": true,
}

// forbidden names what the core must never reach even indirectly, with why, so a failure says
// what went wrong rather than only "not allowed".
var forbidden = []struct{ prefix, why string }{
	{"go.uber.org/zap", "logging belongs to the caller"},
	{"github.com/prometheus/", "metrics belong to the observing packages"},
	{"golang.org/x/oauth2", "credentials mean network I/O"},
	{"cloud.google.com/", "cloud clients belong in pkg/gcp"},
	{"google.golang.org/", "gRPC and cloud APIs belong in pkg/gcp"},
	{"net/http", "the core does no network I/O"},
}

// TestCoreImportsArePure fails when the decision core depends, even transitively, on anything
// but the standard library (without net/http), drwatchd's pure packages and yaml. A "pure"
// package must be pure in its imports, not only in its functions.
func TestCoreImportsArePure(t *testing.T) {
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}"}, corePackages...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps of the core: %v\n%s", err, out)
	}
	deps := strings.Fields(strings.TrimSpace(string(out)))
	if len(deps) == 0 || len(deps)%2 != 0 {
		t.Fatalf("go list -deps printed %q; want pairs of import path and standard flag", out)
	}
	var bad []string
	for i := 0; i < len(deps); i += 2 {
		path, std := deps[i], deps[i+1] == "true"
		if why := forbiddenWhy(path); why != "" {
			bad = append(bad, path+": forbidden ("+why+")")
			continue
		}
		switch {
		case std, thirdParty[path], purePackages[path]:
		case strings.HasPrefix(path, "github.com/drwatchd/drwatchd/"):
			bad = append(bad, path+": not one of drwatchd's pure packages")
		default:
			bad = append(bad, path+": not the standard library or an allowed module")
		}
	}
	if len(bad) > 0 {
		t.Errorf("the decision core (%s) imports, directly or not:\n  %s\n(run: go list -deps %s)",
			strings.Join(corePackages, ", "), strings.Join(bad, "\n  "), strings.Join(corePackages, " "))
	}
}

func forbiddenWhy(path string) string {
	for _, f := range forbidden {
		if strings.HasPrefix(path, f.prefix) {
			return f.why
		}
	}
	return ""
}
