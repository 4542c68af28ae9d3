package main

import (
	"bytes"
	"strings"
	"testing"
)

// drwatchd preflight --sim passes on the demo; a config with a wrong endpoint ID, and one naming
// a backend service the URL map does not reference, each fail with the problem and its field
// named, exit 1 (issue 13).
func TestPreflightSim(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		code     int
		wantFail []string // fragments of fail lines
	}{
		{"demo passes", []string{"preflight", "--sim"}, 0, nil},
		{"wrong endpoint id", []string{"preflight", "--sim", "--config", "testdata/preflight-wrong-endpoint.yaml"}, 1, []string{
			"fail  services[0].regions[1].endpoint_id (fraud-scorer, us-east1): endpoint projects/demo-project/locations/us-east1/endpoints/9999 does not exist",
		}},
		{"backend not in the url map", []string{"preflight", "--sim", "--config", "testdata/preflight-missing-backend.yaml"}, 1, []string{
			"fail  services[0].regions[2].backend_service (fraud-scorer, europe-west1): URL map projects/demo-project/global/urlMaps/fraud-scorer does not reference backend service projects/demo-project/global/backendServices/fraud-europe-west1-new",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			fails := 0
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(line, "fail") {
					fails++
				}
			}
			for _, w := range tc.wantFail {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tc.code == 0 && fails != 0 {
				t.Errorf("%d fail lines on the demo:\n%s", fails, out.String())
			}
			for _, must := range []string{"endpoint_id", "shift.url_map", "metric response_count", "checkpoint", "state.path"} {
				if !strings.Contains(out.String(), must) {
					t.Errorf("checklist lacks a %s line:\n%s", must, out.String())
				}
			}
		})
	}
}

func TestPreflightUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"preflight"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: drwatchd preflight") {
		t.Fatalf("no flags: exit %d, stderr %q", code, errb.String())
	}
}
