package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	// Timezone names must resolve in an image without /usr/share/zoneinfo (distroless).
	_ "time/tzdata"
)

// Practice is a scheduled practice run (failover.practice): at every slot of Schedule, when the
// service is healthy and nothing else is in flight, the daemon fails over to To, holds the traffic
// there for Duration, and fails back, measuring the RTO from the weights read back from the router.
type Practice struct {
	// Schedule: "DAYS HH:MM", DAYS being one day (Mon..Sun, or its full name), a comma list of
	// days ("Mon,Thu") or "daily"; HH:MM on a 24-hour clock in Timezone. E.g. "Tue 10:00".
	Schedule string `yaml:"schedule"`
	// Duration is how long the traffic stays on To once the failover completed. Default 30m.
	Duration Duration `yaml:"duration"`
	// To is the standby the practice fails over to (required; not the primary).
	To string `yaml:"to"`
	// Timezone of Schedule: an IANA name such as "Europe/Paris". Default UTC.
	Timezone string `yaml:"timezone"`

	compiled *Schedule
}

// DefaultPracticeDuration is failover.practice.duration when omitted.
const DefaultPracticeDuration = 30 * time.Minute

// Schedule is a compiled practice schedule: the week days it runs on and the time of day, in a
// location.
type Schedule struct {
	Days   [7]bool // by time.Weekday
	Hour   int
	Minute int
	Loc    *time.Location
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday, "mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday, "wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday, "fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// ParseSchedule parses a practice schedule ("Tue 10:00", "Mon,Thu 09:30", "daily 03:00") in loc
// (nil: UTC). The error quotes s and says what is wrong.
func ParseSchedule(s string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	sc := Schedule{Loc: loc}
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return sc, fmt.Errorf("%q: want DAYS HH:MM, e.g. \"Tue 10:00\", \"Mon,Thu 09:30\" or \"daily 03:00\"", s)
	}
	days, clock := fields[0], fields[1]
	if strings.EqualFold(days, "daily") {
		for i := range sc.Days {
			sc.Days[i] = true
		}
	} else {
		for _, d := range strings.Split(days, ",") {
			wd, ok := dayNames[strings.ToLower(d)]
			if !ok {
				return sc, fmt.Errorf("%q: %q is not a day; want Mon, Tue, Wed, Thu, Fri, Sat, Sun (comma-separated) or daily", s, d)
			}
			if sc.Days[wd] {
				return sc, fmt.Errorf("%q: %s is listed twice; want each day once", s, wd)
			}
			sc.Days[wd] = true
		}
	}
	hh, mm, ok := strings.Cut(clock, ":")
	if !ok || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 {
		return sc, fmt.Errorf("%q: time %q is not HH:MM; want a 24-hour clock time, e.g. 10:00", s, clock)
	}
	h, errH := strconv.Atoi(hh)
	m, errM := strconv.Atoi(mm)
	switch {
	case errH != nil || errM != nil:
		return sc, fmt.Errorf("%q: time %q is not HH:MM; want a 24-hour clock time, e.g. 10:00", s, clock)
	case h < 0 || h > 23:
		return sc, fmt.Errorf("%q: hour must be 0-23", s)
	case m < 0 || m > 59:
		return sc, fmt.Errorf("%q: minute must be 0-59", s)
	}
	sc.Hour, sc.Minute = h, m
	return sc, nil
}

// Prev is the latest slot at or before t (zero if none within eight days: no day set).
func (sc Schedule) Prev(t time.Time) time.Time {
	lt := t.In(sc.Loc)
	for back := 0; back <= 7; back++ {
		day := lt.AddDate(0, 0, -back)
		if !sc.Days[day.Weekday()] {
			continue
		}
		slot := time.Date(day.Year(), day.Month(), day.Day(), sc.Hour, sc.Minute, 0, 0, sc.Loc)
		if !slot.After(t) {
			return slot
		}
	}
	return time.Time{}
}

// Next is the earliest slot after t (zero if none: no day set).
func (sc Schedule) Next(t time.Time) time.Time {
	lt := t.In(sc.Loc)
	for fwd := 0; fwd <= 7; fwd++ {
		day := lt.AddDate(0, 0, fwd)
		if !sc.Days[day.Weekday()] {
			continue
		}
		slot := time.Date(day.Year(), day.Month(), day.Day(), sc.Hour, sc.Minute, 0, 0, sc.Loc)
		if slot.After(t) {
			return slot
		}
	}
	return time.Time{}
}

// MinGap is the shortest time between two consecutive slots (nominal, ignoring DST).
func (sc Schedule) MinGap() time.Duration {
	gap, last, first := 7*24*time.Hour, -1, -1
	for d := range 7 {
		if !sc.Days[d] {
			continue
		}
		if first < 0 {
			first = d
		}
		if last >= 0 {
			gap = min(gap, time.Duration(d-last)*24*time.Hour)
		}
		last = d
	}
	if first >= 0 && last != first {
		gap = min(gap, time.Duration(first+7-last)*24*time.Hour)
	}
	return gap
}

// Compile parses the schedule in its timezone.
func (p *Practice) Compile() (Schedule, error) {
	loc := time.UTC
	if p.Timezone != "" {
		l, err := time.LoadLocation(p.Timezone)
		if err != nil {
			return Schedule{}, fmt.Errorf("timezone %q: %w", p.Timezone, err)
		}
		loc = l
	}
	return ParseSchedule(p.Schedule, loc)
}

// Sched is the compiled schedule: compiled once by ApplyDefaults (so the decision loop does not
// resolve a timezone every iteration), else now. ok is false when the schedule is invalid.
func (p *Practice) Sched() (Schedule, bool) {
	if p.compiled != nil {
		return *p.compiled, true
	}
	sc, err := p.Compile()
	return sc, err == nil
}

// applyDefaults sets the duration default and compiles the schedule (when valid).
func (p *Practice) applyDefaults() {
	if p.Duration == 0 {
		p.Duration = Duration(DefaultPracticeDuration)
	}
	if sc, err := p.Compile(); err == nil {
		p.compiled = &sc
	} else {
		p.compiled = nil
	}
}

// practice validates s.Failover.Practice (fp is the path of s.Failover).
func (v *validator) practice(fp string, s *Service) {
	pr := s.Failover.Practice
	if pr == nil {
		return
	}
	pp := fp + ".practice"
	var sc Schedule
	var schedErr error
	loc := time.UTC
	if pr.Timezone != "" {
		l, err := time.LoadLocation(pr.Timezone)
		if err != nil {
			v.add(pp+".timezone", "%q is not a time zone; want an IANA name such as \"UTC\" or \"Europe/Paris\"", pr.Timezone)
		} else {
			loc = l
		}
	}
	if strings.TrimSpace(pr.Schedule) == "" {
		v.add(pp+".schedule", "required; want DAYS HH:MM, e.g. \"Tue 10:00\"")
		schedErr = fmt.Errorf("missing")
	} else if sc, schedErr = ParseSchedule(pr.Schedule, loc); schedErr != nil {
		v.add(pp+".schedule", "%s", schedErr.Error())
	}
	switch {
	case pr.Duration <= 0:
		v.add(pp+".duration", "%s is not positive; want how long traffic stays on the standby, e.g. \"30m\"", pr.Duration)
	case schedErr == nil && pr.Duration.D() >= sc.MinGap():
		v.add(pp+".duration", "%s is not shorter than the %s between two slots of %q; want a shorter hold or fewer slots", pr.Duration, Duration(sc.MinGap()), pr.Schedule)
	}
	switch r := s.Region(pr.To); {
	case pr.To == "":
		v.add(pp+".to", "required; want the standby region the practice fails over to")
	case r == nil:
		var names []string
		for _, r := range s.Regions {
			if r.Role != "primary" {
				names = append(names, r.Name)
			}
		}
		v.add(pp+".to", "%q is not a region of this service; want one of its standbys: %s", pr.To, strings.Join(names, ", "))
	case r.Role == "primary":
		v.add(pp+".to", "%q is the primary; want a standby region", pr.To)
	}
	if s.Failover.Mode == "dry-run" {
		v.add(pp, "set while failover.mode is dry-run, which moves no traffic; want mode auto or manual, or no practice")
	}
	if s.Shift.Router == "none" {
		v.add(pp, "set while shift.router is none: there is no traffic to move; want a router, or no practice")
	}
}
