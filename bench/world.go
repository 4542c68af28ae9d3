package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// The simulated cloud of the scale benchmark runs in a child process (this same binary, with
// worldEnv set), so the parent's CPU time, allocations and heap are the daemon's alone: the fake
// Monitoring server building 10,000 series per call is not billed to the daemon's loop.
const worldEnv = "DRWATCHD_BENCH_WORLD_CONFIG"

// worldWarmup is how long the world runs before the daemon starts: metrics are sampled every
// minute and visible after 180 s plus up to 60 s of ingestion (descriptors: 240 s). A daemon that
// has run for a while keeps lookback (5m) + ingest delay + one bucket of history and re-reads
// the newest part of it every loop; 15 minutes fill all of it, so a measured loop decodes as
// many points as in production's steady state. (It was 8 minutes until 2026-11-29: the window
// then held 4-5 visible buckets per series, not the 10-11 a loop re-read in production.)
const worldWarmup = 15 * time.Minute

// worldInfo is what the child tells the parent: where the fakes listen, the world's time.
type worldInfo struct {
	GRPC      string    `json:"grpc"`
	Compute   string    `json:"compute"`
	GCS       string    `json:"gcs"`
	ProbeBase string    `json:"probe_base"`
	Now       time.Time `json:"now"`
	Err       string    `json:"err,omitempty"`
}

// serveWorldIfChild runs the world when this process is a world child, and never returns then.
func serveWorldIfChild() {
	path := os.Getenv(worldEnv)
	if path == "" {
		return
	}
	os.Exit(serveWorld(path, os.Stdin, os.Stdout))
}

// serveWorld starts the simulated cloud for the config at path, advances it by worldWarmup,
// prints worldInfo, then answers "calls" lines with the Monitoring ListTimeSeries call count
// (fakemon's own counter: every page is a request) until stdin closes.
func serveWorld(path string, in io.Reader, out io.Writer) int {
	ctx := context.Background()
	enc := json.NewEncoder(out)
	env, err := simrun.Start(ctx, simrun.FileLoader(path), func(s *sim.Spec) { s.Step = 5 * time.Second })
	if err != nil {
		_ = enc.Encode(worldInfo{Err: err.Error()})
		return 1
	}
	defer env.Close()
	env.Sim.World.Advance(worldWarmup)
	_ = enc.Encode(worldInfo{
		GRPC: env.Sim.GRPCAddr, Compute: env.Sim.ComputeURL, GCS: env.Sim.GCSURL,
		ProbeBase: env.Sim.ProbeBase, Now: env.Sim.World.Now(),
	})
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "calls":
			_ = enc.Encode(map[string]int{"ListTimeSeries": env.Sim.Mon.Calls("ListTimeSeries", "")})
		}
	}
	return 0
}

// world is a running child world.
type world struct {
	info worldInfo
	cmd  *exec.Cmd
	in   io.WriteCloser
	dec  *json.Decoder
}

func startWorld(configPath string) (*world, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), worldEnv+"="+configPath)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &world{cmd: cmd, in: in, dec: json.NewDecoder(out)}
	if err := w.dec.Decode(&w.info); err != nil {
		w.close()
		return nil, fmt.Errorf("world child: %w", err)
	}
	if w.info.Err != "" {
		w.close()
		return nil, fmt.Errorf("world child: %s", w.info.Err)
	}
	return w, nil
}

// listCalls is the fake Monitoring server's ListTimeSeries request count so far.
func (w *world) listCalls() (int, error) {
	if _, err := io.WriteString(w.in, "calls\n"); err != nil {
		return 0, err
	}
	var m map[string]int
	if err := w.dec.Decode(&m); err != nil {
		return 0, err
	}
	return m["ListTimeSeries"], nil
}

func (w *world) close() {
	_ = w.in.Close()
	_ = w.cmd.Wait()
}
