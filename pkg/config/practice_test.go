package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

func TestParseSchedule(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in      string
		days    []time.Weekday
		hh, mm  int
		wantErr string
	}{
		{in: "Tue 10:00", days: []time.Weekday{time.Tuesday}, hh: 10},
		{in: "tuesday 9:05", days: []time.Weekday{time.Tuesday}, hh: 9, mm: 5},
		{in: "Mon,Thu 09:30", days: []time.Weekday{time.Monday, time.Thursday}, hh: 9, mm: 30},
		{in: "daily 23:59", days: []time.Weekday{0, 1, 2, 3, 4, 5, 6}, hh: 23, mm: 59},
		{in: "Tue 25:00", wantErr: `"Tue 25:00": hour must be 0-23`},
		{in: "Tue 10:60", wantErr: `"Tue 10:60": minute must be 0-59`},
		{in: "Tux 10:00", wantErr: `"Tux" is not a day`},
		{in: "Tue,Tue 10:00", wantErr: "listed twice"},
		{in: "Tue", wantErr: "want DAYS HH:MM"},
		{in: "Tue 10h", wantErr: `time "10h" is not HH:MM; want`},
		{in: "Tue 1:5", wantErr: `is not HH:MM`},
	}
	for _, c := range cases {
		sc, err := config.ParseSchedule(c.in, paris)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		var want [7]bool
		for _, d := range c.days {
			want[d] = true
		}
		if sc.Days != want || sc.Hour != c.hh || sc.Minute != c.mm || sc.Loc != paris {
			t.Errorf("%q: %+v", c.in, sc)
		}
	}
}

// Slots are wall-clock times in the schedule's zone, across a DST change.
func TestScheduleSlots(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	sc, err := config.ParseSchedule("Tue 10:00", paris)
	if err != nil {
		t.Fatal(err)
	}
	// Tuesday 2026-03-24 10:00 CET is 09:00 UTC; Tuesday 2026-03-31 10:00 CEST is 08:00 UTC.
	at := time.Date(2026, 3, 24, 9, 0, 0, 0, time.UTC)
	if got := sc.Prev(at); !got.Equal(at) {
		t.Fatalf("Prev at the slot = %s, want %s", got, at)
	}
	if got := sc.Prev(at.Add(-time.Second)); !got.Equal(at.AddDate(0, 0, -7)) {
		t.Fatalf("Prev just before = %s", got)
	}
	next := sc.Next(at)
	if want := time.Date(2026, 3, 31, 8, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("Next = %s, want %s (10:00 CEST)", next.UTC(), want)
	}
	daily, _ := config.ParseSchedule("daily 03:00", time.UTC)
	if g := daily.MinGap(); g != 24*time.Hour {
		t.Fatalf("daily gap %s", g)
	}
	two, _ := config.ParseSchedule("Mon,Thu 03:00", time.UTC)
	if g := two.MinGap(); g != 3*24*time.Hour {
		t.Fatalf("Mon,Thu gap %s", g)
	}
	if g := sc.MinGap(); g != 7*24*time.Hour {
		t.Fatalf("weekly gap %s", g)
	}
}

func TestValidatePractice(t *testing.T) {
	d := func(s string) config.Duration {
		v, err := config.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ok := func() *config.Practice {
		return &config.Practice{Schedule: "Tue 10:00", Duration: d("30m"), To: "us-east1"}
	}
	cases := []struct {
		name   string
		mutate func(s *config.Service)
		path   string
		frag   string
	}{
		{"hour", func(s *config.Service) { s.Failover.Practice.Schedule = "Tue 25:00" }, "services[0].failover.practice.schedule", `"Tue 25:00": hour must be 0-23`},
		{"missing schedule", func(s *config.Service) { s.Failover.Practice.Schedule = "" }, "services[0].failover.practice.schedule", "required"},
		{"timezone", func(s *config.Service) { s.Failover.Practice.Timezone = "Mars/Olympus" }, "services[0].failover.practice.timezone", `"Mars/Olympus" is not a time zone`},
		{"duration", func(s *config.Service) { s.Failover.Practice.Duration = d("-1m") }, "services[0].failover.practice.duration", "not positive"},
		{"duration vs gap", func(s *config.Service) {
			s.Failover.Practice.Schedule = "daily 10:00"
			s.Failover.Practice.Duration = d("24h")
		}, "services[0].failover.practice.duration", "24h is not shorter than the 24h between two slots"},
		{"to missing", func(s *config.Service) { s.Failover.Practice.To = "" }, "services[0].failover.practice.to", "required"},
		{"to unknown", func(s *config.Service) { s.Failover.Practice.To = "asia-east1" }, "services[0].failover.practice.to", `"asia-east1" is not a region of this service`},
		{"to primary", func(s *config.Service) { s.Failover.Practice.To = "us-central1" }, "services[0].failover.practice.to", "is the primary"},
		{"dry-run", func(s *config.Service) { s.Failover.Mode = "dry-run" }, "services[0].failover.practice", "dry-run"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := parseMinimal(t)
			cfg.Services[0].Failover.Practice = ok()
			if err := cfg.Validate(); err != nil {
				t.Fatalf("the valid practice is refused: %v", err)
			}
			c.mutate(&cfg.Services[0])
			wantPath(t, cfg.Validate(), c.path, c.frag)
		})
	}
}

// The example config's practice parses, gets its defaults and compiles in its zone.
func TestExamplePractice(t *testing.T) {
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(raw, config.WithLookupEnv(env()))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Services[0].Failover.Practice
	if p == nil || p.To != "us-east1" || p.Duration.D() != 30*time.Minute {
		t.Fatalf("practice %+v", p)
	}
	sc, ok := p.Sched()
	if !ok || sc.Loc.String() != "Europe/Paris" || !sc.Days[time.Tuesday] || sc.Hour != 10 {
		t.Fatalf("schedule %+v ok=%v", sc, ok)
	}
	// Omitted duration: 30m.
	cfg.Services[0].Failover.Practice.Duration = 0
	cfg.ApplyDefaults()
	if cfg.Services[0].Failover.Practice.Duration.D() != config.DefaultPracticeDuration {
		t.Fatalf("default duration %s", cfg.Services[0].Failover.Practice.Duration)
	}
}
