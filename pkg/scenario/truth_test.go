package scenario

import (
	"testing"
	"time"
)

func TestEpisodesFromWrites(t *testing.T) {
	order := []string{"p", "a", "b"}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := func(s int, p, a, b float64) routeWrite {
		return routeWrite{at: at(s), shares: map[string]float64{"p": p, "a": a, "b": b}}
	}
	cases := []struct {
		name          string
		writes        []routeWrite
		want          []episode
		failovers     int
		firstDecision int // seconds; -1 none
	}{
		{"no write", nil, nil, 0, -1},
		{"a rewrite of the same split is no episode", []routeWrite{w(5, 1, 0, 0)}, nil, 0, -1},
		{"staged failover is one episode", []routeWrite{w(10, .9, .1, 0), w(20, .5, .5, 0), w(30, 0, 1, 0)},
			[]episode{{start: at(10), from: "p", to: "a"}}, 1, 10},
		{"cancelled: traffic returns", []routeWrite{w(10, .9, .1, 0), w(20, 1, 0, 0)},
			[]episode{{start: at(10), from: "p", to: "p"}}, 0, -1},
		{"spread then consolidate", []routeWrite{w(10, 0, .5, .5), w(200, 0, 1, 0)},
			[]episode{{start: at(10), from: "p", to: "a"}}, 1, 10},
		{"failover then failback", []routeWrite{w(10, 0, 1, 0), w(900, 1, 0, 0)},
			[]episode{{start: at(10), from: "p", to: "a"}, {start: at(900), from: "a", to: "p"}}, 1, 10},
		{"flapping between standbys counts each move", []routeWrite{w(10, 0, 1, 0), w(40, 0, 0, 1), w(70, 0, 1, 0)},
			[]episode{{start: at(10), from: "p", to: "a"}, {start: at(40), from: "a", to: "b"}, {start: at(70), from: "b", to: "a"}}, 3, 10},
		{"open at the end, moved", []routeWrite{w(10, .5, .5, 0), w(20, .25, .75, 0)},
			[]episode{{start: at(10), from: "p", to: "a", open: true}}, 1, 10},
		{"open at the end, still mostly home", []routeWrite{w(10, .9, .1, 0)},
			[]episode{{start: at(10), from: "p", to: "p", open: true}}, 0, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := episodes(c.writes, "p", order)
			if len(got) != len(c.want) {
				t.Fatalf("episodes %+v, want %+v", got, c.want)
			}
			n := 0
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("episode %d: %+v, want %+v", i, got[i], c.want[i])
				}
				if got[i].counted("p") {
					n++
				}
			}
			if n != c.failovers {
				t.Errorf("failovers %d, want %d", n, c.failovers)
			}
		})
	}
}
