package observability_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStateStoreFailurePages extends the end-to-end alerting test to the state store (issue 16,
// item 2): the real daemon on its simulated cloud, its state directory replaced by a file while
// the demo's primary outage is about to start. A page reaches a real Alertmanager, /readyz and
// /status say so, and the daemon still fails the outage over (before, the iteration returned
// before acting and before pushing: traffic stayed on the dead region and nothing paged).
func TestStateStoreFailurePages(t *testing.T) {
	promBin, amBin, why := e2eTools()
	if why != "" {
		t.Skip(why)
	}
	tmp := t.TempDir()
	bin := buildDaemon(t, tmp)
	stack := startAlertStack(t, tmp, promBin, amBin)

	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	base := "http://" + addr
	stateDir := filepath.Join(tmp, "state")
	args := []string{"run", "--sim", "--listen", addr, "--speed", simSpeed, "--log-format", "json",
		"--config", writeDemoConfig(t, tmp, stack.amURL)}
	d := startProc(t, "drwatchd", []string{"DRWATCHD_SIM_STATE=" + filepath.Join(stateDir, "state.json")}, bin, args...)
	pollUntil(t, readyTimeout, "drwatchd /readyz", httpOK(base+"/readyz"), d)

	// The state directory goes away and a file takes its place: every write fails (as root,
	// a read-only mode would not stop the test process; ENOTDIR does).
	if err := os.Rename(stateDir, stateDir+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateDir, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broke := time.Now()

	var page *hookAlert
	pollUntil(t, alertsTimeout, "DrwatchdStateNotPersisted at the Alertmanager webhook", func() (bool, error) {
		for _, a := range stack.alerts() {
			if a.Status == "firing" && a.Labels["alertname"] == "DrwatchdStateNotPersisted" {
				page = &a
				return true, nil
			}
		}
		return false, nil
	}, d, stack.am)
	t.Logf("DrwatchdStateNotPersisted reached the webhook %s after the state directory broke", time.Since(broke).Round(100*time.Millisecond))
	if page.Labels["severity"] != "page" || !strings.Contains(page.Annotations["description"], "state.json") {
		t.Errorf("page labels %v, annotations %v", page.Labels, page.Annotations)
	}
	checkAnnotations(t, page, "")

	if code, _, err := httpGet(base + "/readyz"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d (%v) while the state cannot be written, want 503", code, err)
	}
	_, raw, err := httpGet(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		StateStoreError string `json:"state_store_error"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || !strings.Contains(st.StateStoreError, "state.json") {
		t.Errorf("/status state_store_error = %q (%v)", st.StateStoreError, err)
	}

	// The demo's outage is still failed over, on the state in memory.
	pollUntil(t, failoverTimeout, "the demo's failover with an unwritable state store", func() (bool, error) {
		s, err := getStatus(base)
		if err != nil || len(s.Services) == 0 {
			return false, err
		}
		return s.Services[0].State.State == "failed-over", nil
	}, d)
}
