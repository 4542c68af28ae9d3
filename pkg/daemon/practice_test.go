package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
)

// TestPracticeMetrics: a service with practice exports its record and counts outcomes by
// result (every result present from the start, so increase() sees the first one); a service
// without practice has no series, and removing the practice removes them.
func TestPracticeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newPracticeMetrics(reg)
	log := zaptest.NewLogger(t)
	since := time.Unix(1_700_000_000, 0)
	with := &config.Service{Name: "a", Failover: config.Failover{Practice: &config.Practice{Schedule: "Tue 10:00", To: "us-east1"}}}
	without := &config.Service{Name: "b"}
	st := failover.State{Practice: &failover.Practice{Since: since, LastSuccess: since.Add(time.Hour), LastRTO: 312 * time.Second}}
	m.report(with, st, []failover.Event{{Kind: failover.EventPracticeStarted}, {Kind: failover.EventPracticeSucceeded, Code: "success"}}, log)
	m.report(without, failover.State{}, nil, log)
	want := `
# HELP drwatchd_practice_configured_timestamp_seconds When the leader first saw failover.practice configured for the service (the no-success alert counts from it until a first success).
# TYPE drwatchd_practice_configured_timestamp_seconds gauge
drwatchd_practice_configured_timestamp_seconds{service="a"} 1.7e+09
# HELP drwatchd_practice_in_progress 1 while a scheduled practice run moves or holds the service's traffic.
# TYPE drwatchd_practice_in_progress gauge
drwatchd_practice_in_progress{service="a"} 0
# HELP drwatchd_practice_last_success_timestamp_seconds When the last scheduled practice run succeeded (failed over, held, failed back, read back home); 0: never.
# TYPE drwatchd_practice_last_success_timestamp_seconds gauge
drwatchd_practice_last_success_timestamp_seconds{service="a"} 1.7000036e+09
# HELP drwatchd_practice_rto_seconds RTO of the last successful practice run: failover applied -> the router read back with 100% on the target.
# TYPE drwatchd_practice_rto_seconds gauge
drwatchd_practice_rto_seconds{service="a"} 312
# HELP drwatchd_practice_runs_total Scheduled practice runs by result: success, failed, skipped (not healthy or busy at the slot), aborted.
# TYPE drwatchd_practice_runs_total counter
drwatchd_practice_runs_total{result="aborted",service="a"} 0
drwatchd_practice_runs_total{result="failed",service="a"} 0
drwatchd_practice_runs_total{result="skipped",service="a"} 0
drwatchd_practice_runs_total{result="success",service="a"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	with.Failover.Practice = nil
	m.report(with, failover.State{Practice: st.Practice}, nil, log)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("%d series left after the practice was removed (%v)", n, err)
	}
}
