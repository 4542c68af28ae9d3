package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/journal"
)

// journalDaemon is fakeDaemon with a real journal behind /journal.
type journalDaemon struct {
	fakeDaemon
	j   journal.Journal
	now time.Time
}

func (f *journalDaemon) Journal(q journal.Query) (api.Journal, error) {
	if q.Service != "" && q.Service != "fraud-scorer" && q.Service != "search" {
		return api.Journal{}, fmt.Errorf("%w %q", api.ErrUnknownService, q.Service)
	}
	es, more := f.j.Select(q.Resolve(f.now))
	return api.Journal{Time: f.now, Entries: es, More: more}, nil
}

func TestJournalEndpoint(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	d := &journalDaemon{now: t0.Add(3 * time.Hour)}
	for i := range 6 {
		svc := "fraud-scorer"
		if i%3 == 2 {
			svc = "search"
		}
		d.j.Add(journal.Entry{Service: svc, At: t0.Add(time.Duration(i) * time.Hour / 2), Kind: "transition"})
	}
	srv := httptest.NewServer(Public(d, prometheus.NewRegistry(), func() bool { return true }, zaptest.NewLogger(t)))
	defer srv.Close()
	get := func(query string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/journal" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: content type %q", query, ct)
		}
		return resp.StatusCode, string(body)
	}
	cases := []struct {
		query string
		ids   []string
		more  bool
	}{
		{"", []string{"1", "2", "3", "4", "5", "6"}, false},
		{"?service=fraud-scorer", []string{"1", "2", "4", "5"}, false},
		{"?service=fraud-scorer&since=2h", []string{"4", "5"}, false},
		{"?since=2026-11-29T01:30:00Z&until=2026-11-29T02:00:00Z", []string{"2", "3"}, false},
		{"?service=fraud-scorer&limit=1", []string{"5"}, true},
		{"?id=3", []string{"3"}, false},
	}
	for _, c := range cases {
		code, body := get(c.query)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.query, code, body)
		}
		var out api.Journal
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		var ids []string
		for _, e := range out.Entries {
			ids = append(ids, e.ID)
		}
		if strings.Join(ids, ",") != strings.Join(c.ids, ",") || out.More != c.more {
			t.Errorf("%s: entries %v more %v, want %v more %v", c.query, ids, out.More, c.ids, c.more)
		}
	}
	for query, want := range map[string]struct {
		code int
		msg  string
	}{
		"?since=yesterday":     {http.StatusBadRequest, `since: \"yesterday\" is neither an RFC 3339 time`},
		"?limit=-1":            {http.StatusBadRequest, "limit:"},
		"?services=a":          {http.StatusBadRequest, "services: unknown parameter"},
		"?service=no-such-svc": {http.StatusNotFound, `unknown service \"no-such-svc\"`},
	} {
		code, body := get(query)
		if code != want.code || !strings.Contains(body, want.msg) || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s; want %d with %q", query, code, body, want.code, want.msg)
		}
	}
	// A daemon without a journal says so.
	plain := httptest.NewServer(Public(&fakeDaemon{}, prometheus.NewRegistry(), func() bool { return true }, zaptest.NewLogger(t)))
	defer plain.Close()
	resp, err := http.Get(plain.URL + "/journal")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("/journal without a journal: %d, want 501", resp.StatusCode)
	}
}
