package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// measureProcess runs the built daemon, `drwatchd run --sim --config FILE`, on a config of n
// endpoints, waits for loops iterations (its drwatchd_loop_duration_seconds_count), reads its
// peak RSS (VmHWM) and times GET /metrics. The process embeds the simulated cloud, so its RSS is
// the daemon's plus the simulator's: an upper bound of the daemon's own.
func measureProcess(ctx context.Context, dir, bin string, n, loops int, row *scaleRow) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("daemon binary: %w (run `make build` first)", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	path := filepath.Join(dir, fmt.Sprintf("proc-%d.yaml", n))
	if err := os.WriteFile(path, scaleConfig(n, addr), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// A fast virtual clock: the loop runs back to back as fast as it can.
	cmd := exec.CommandContext(ctx, bin, "run", "--sim", "--config", path, "--speed", "1000", "--log-format", "json", "--log-level", "error")
	cmd.Env = append(os.Environ(), "DRWATCHD_SIM_STATE="+filepath.Join(dir, fmt.Sprintf("proc-%d-state.json", n)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	base := "http://" + addr
	client := &http.Client{Timeout: 30 * time.Second}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// Wait for loops iterations, or at most waitBudget once one has completed: at 10,000
	// endpoints an iteration can take minutes.
	budget := time.NewTimer(waitBudget)
	defer budget.Stop()
	over := false
	for {
		body, _, err := scrape(ctx, client, base)
		n := 0
		if err == nil {
			n = loopCount(body)
		}
		if n >= loops || (over && n >= 1) {
			row.RSSLoops = n
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("daemon ran %d of %d loops before the deadline: %v; stderr: %s", n, loops, ctx.Err(), tail(stderr.String()))
		case <-budget.C:
			over = true
		case <-tick.C:
		}
	}
	// Scrape time: the median of a few scrapes.
	var ds []time.Duration
	for range 5 {
		body, d, err := scrape(ctx, client, base)
		if err != nil {
			return err
		}
		ds = append(ds, d)
		row.ScrapeBytes = len(body)
	}
	row.Scrape = median(ds)
	hwm, err := vmHWM(cmd.Process.Pid)
	if err != nil {
		return err
	}
	row.RSS = hwm
	return nil
}

// waitBudget bounds the wait for the subprocess's loops once one has completed.
const waitBudget = 60 * time.Second

func scrape(ctx context.Context, c *http.Client, base string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return body, d, nil
}

// loopCount is drwatchd_loop_duration_seconds_count in a scrape.
func loopCount(body []byte) int {
	for _, l := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(l, "drwatchd_loop_duration_seconds_count "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int(f)
		}
	}
	return 0
}

// vmHWM is a process's peak resident set size in bytes.
func vmHWM(pid int) (uint64, error) { return procStatus(pid, "VmHWM") }

// procStatus reads one size field (kB) of /proc/PID/status, in bytes.
func procStatus(pid int, key string) (uint64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(l, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
