package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/journal"
)

// cmdExplain reads a service's decision journal from a running daemon's public listener
// (GET /journal) and tells it as plain sentences: what happened, on what evidence, which guards
// passed or blocked. Exit 0 with the story (or a line saying nothing was recorded), 1 when the
// daemon cannot be reached or does not know the service, 2 for bad usage.
func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("DRWATCHD_ADDR", "http://127.0.0.1:8080"), "the daemon's public listener ($DRWATCHD_ADDR)")
	since := fs.String("since", "2h", "from this long ago (a duration) or this time (RFC 3339)")
	until := fs.String("until", "", "up to this long ago or this time (default: now)")
	limit := fs.Int("limit", journal.DefaultLimit, fmt.Sprintf("at most this many entries, the newest (1..%d)", journal.MaxLimit))
	asJSON := fs.Bool("json", false, "print the entries as JSON, with all their evidence")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drwatchd explain SERVICE [--since 2h] [--until T] [--addr URL] [--json]")
		fs.PrintDefaults()
	}
	// Flags may come before or after SERVICE.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 || positional[0] == "" {
		fs.Usage()
		return 2
	}
	service := positional[0]
	q := url.Values{"service": {service}, "limit": {strconv.Itoa(*limit)}}
	if *since != "" {
		q.Set("since", *since)
	}
	if *until != "" {
		q.Set("until", *until)
	}
	base := *addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	c := &api.Client{Base: base, Client: &http.Client{Timeout: *timeout}}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	j, err := c.Journal(ctx, q)
	if err != nil {
		var he *api.HTTPError
		if errors.As(err, &he) {
			fmt.Fprintf(stderr, "drwatchd explain: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "drwatchd explain: cannot read the journal from the daemon at %s (is it running? --addr is its public listener, e.g. http://127.0.0.1:8080): %v\n", base, err)
		}
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(j)
		return 0
	}
	window := "since " + *since
	if _, err := time.ParseDuration(*since); err == nil {
		window = "in the last " + *since
	}
	if !j.Leader {
		fmt.Fprintln(stdout, "note: this daemon does not lead; its journal is the one it last read from the state store (ask the leader for the latest).")
	}
	if len(j.Entries) == 0 {
		fmt.Fprintf(stdout, "%s: no decision recorded %s (daemon clock %s).\n", service, window, j.Time.UTC().Format(time.RFC3339))
		return 0
	}
	fmt.Fprintf(stdout, "%s: %d journal entries %s (daemon clock %s; times UTC):\n", service, len(j.Entries), window, j.Time.UTC().Format(time.RFC3339))
	if j.More {
		fmt.Fprintf(stdout, "(older entries left out: raise --limit or narrow --since)\n")
	}
	for _, line := range journal.Story(j.Entries) {
		fmt.Fprintln(stdout, printable(line))
	}
	return 0
}
