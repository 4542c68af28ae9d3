package main

import (
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
	"unicode"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
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

// client reads the token and returns an admin API client.
func (c *clientFlags) client() (*api.Client, error) {
	tok, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read admin token: %w", err)
	}
	return &api.Client{Base: c.addr, Token: strings.TrimSpace(string(tok)), Client: &http.Client{Timeout: c.timeout}}, nil
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
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "drwatchd status:", err)
		return 1
	}
	st, err := c.Status(context.Background())
	if err != nil {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State.State, s.State.Active, strings.Join(w, ","), printable(s.State.Reason))
	}
	_ = tw.Flush()
	return 0
}

func adminVerb(verb failover.Verb) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		fs := flag.NewFlagSet(string(verb), flag.ContinueOnError)
		fs.SetOutput(stderr)
		var cf clientFlags
		cf.register(fs)
		why := fs.String("why", "", "why (required; logged with the command)")
		who := fs.String("who", envOr("USER", "unknown"), "who issues the command")
		wait := fs.Duration("wait", time.Minute, "wait this long for the command's outcome (applied or refused at the daemon's next iteration); 0: return once queued")
		var to *string
		if verb == failover.VerbFailover {
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
		c, err := cf.client()
		if err != nil {
			fmt.Fprintf(stderr, "drwatchd %s: %v\n", verb, err)
			return 1
		}
		res, err := c.Submit(context.Background(), fs.Arg(0), verb, cmd)
		if err != nil {
			fmt.Fprintf(stderr, "drwatchd %s: %v\n", verb, err)
			return 1
		}
		fmt.Fprintln(stdout, printable(res.Message))
		if *wait <= 0 || res.Status != api.CommandPending || res.ID == "" {
			return exitFor(res)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *wait)
		defer cancel()
		res, err = c.Wait(ctx, res.ID, 500*time.Millisecond)
		if err != nil {
			fmt.Fprintf(stderr, "drwatchd %s: no outcome within %s (the command may still apply; see drwatchd status): %v\n", verb, *wait, err)
			return 1
		}
		if res.Status == api.CommandRefused {
			fmt.Fprintf(stderr, "drwatchd %s: refused: %s\n", verb, printable(res.Message))
			return 1
		}
		fmt.Fprintln(stdout, printable(res.Message))
		return 0
	}
}

// exitFor is the exit code of a result that is not waited for.
func exitFor(res api.CommandResult) int {
	if res.Status == api.CommandRefused {
		return 1
	}
	return 0
}

// printable replaces control characters: a reason can quote an operator's free text.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
