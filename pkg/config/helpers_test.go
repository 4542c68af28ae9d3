package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// env returns a lookup over a fixed map, so tests never read the real environment.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// fieldErrors flattens an errors.Join tree into its *FieldErrors; it fails the test on any
// other kind of leaf error.
func fieldErrors(t *testing.T, err error) []*config.FieldError {
	t.Helper()
	var out []*config.FieldError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %q (%T) is not a *config.FieldError", e, e)
		}
		out = append(out, fe)
	}
	if err != nil {
		walk(err)
	}
	return out
}

func paths(fes []*config.FieldError) []string {
	var p []string
	for _, fe := range fes {
		p = append(p, fe.Path)
	}
	return p
}

// wantPath asserts that err holds a *FieldError at path whose message contains every fragment.
func wantPath(t *testing.T, err error, path string, fragments ...string) *config.FieldError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one at %s", path)
	}
	fes := fieldErrors(t, err)
	for _, fe := range fes {
		if fe.Path != path {
			continue
		}
		for _, f := range fragments {
			if !strings.Contains(fe.Msg, f) {
				t.Errorf("%s: message %q does not contain %q", path, fe.Msg, f)
			}
		}
		return fe
	}
	t.Fatalf("no error at %s; got paths %v:\n%v", path, paths(fes), err)
	return nil
}

const minimalYAML = `
services:
  - name: svc
    project: my-project
    regions:
      - name: us-central1
        role: primary
        endpoint_id: "11"
        deployed_model_id: "21"
        backend_service: projects/my-project/global/backendServices/a
        replicas: {production: 2}
      - name: us-east1
        role: standby
        endpoint_id: "12"
        deployed_model_id: "22"
        backend_service: projects/my-project/global/backendServices/b
        replicas: {production: 2}
    shift:
      url_map: projects/my-project/global/urlMaps/m
`

func parseMinimal(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(minimalYAML), config.WithLookupEnv(env("HOSTNAME", "host-a")))
	if err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	return c
}
