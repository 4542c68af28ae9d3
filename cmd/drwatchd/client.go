package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
)

type clientFlags struct {
	addr      string
	tokenFile string
	timeout   time.Duration
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", envOr("DRWATCHD_ADMIN_ADDR", "http://127.0.0.1:8081"), "admin API base URL ($DRWATCHD_ADMIN_ADDR)")
	fs.StringVar(&c.tokenFile, "token-file", envOr("DRWATCHD_TOKEN_FILE", "/etc/drwatchd/admin-token"), "file holding the admin bearer token ($DRWATCHD_TOKEN_FILE)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "request timeout")
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

func (c *clientFlags) do(method, path string, body any, out any) error {
	tok, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return fmt.Errorf("read admin token: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.addr, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var res api.CommandResult
		if json.Unmarshal(raw, &res) == nil && res.Message != "" {
			return fmt.Errorf("%s: %s", resp.Status, res.Message)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var st api.Status
	if err := cf.do(http.MethodGet, "/v1/status", nil, &st); err != nil {
		fmt.Fprintln(stderr, "drwatchd status:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tACTIVE\tWEIGHTS\tREASON")
	for _, s := range st.Services {
		var w []string
		for _, r := range s.Regions {
			w = append(w, fmt.Sprintf("%s=%d", r.Name, r.Weight))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State.State, s.State.Active, strings.Join(w, ","), s.State.Reason)
	}
	_ = tw.Flush()
	return 0
}

func adminVerb(verb string) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		fs := flag.NewFlagSet(verb, flag.ContinueOnError)
		fs.SetOutput(stderr)
		var cf clientFlags
		cf.register(fs)
		why := fs.String("why", "", "why (required; logged with the command)")
		who := fs.String("who", envOr("USER", "unknown"), "who issues the command")
		var to *string
		if verb == "failover" {
			to = fs.String("to", "", "target region (default: the best eligible standby)")
		}
		fs.Usage = func() {
			fmt.Fprintf(stderr, "usage: drwatchd %s [flags] SERVICE\n", verb)
			fs.PrintDefaults()
		}
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() != 1 || *why == "" {
			fs.Usage()
			return 2
		}
		cmd := api.Command{Why: *why, Who: *who}
		if to != nil {
			cmd.Target = *to
		}
		var res api.CommandResult
		if err := cf.do(http.MethodPost, "/v1/services/"+fs.Arg(0)+"/"+verb, cmd, &res); err != nil {
			fmt.Fprintf(stderr, "drwatchd %s: %v\n", verb, err)
			return 1
		}
		fmt.Fprintln(stdout, res.Message)
		return 0
	}
}
