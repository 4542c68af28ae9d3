package daemon

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// The decision journal (docs/journal.md): the leader records every event of the machine and
// every action it asks for, with the iteration's evidence, in d.journal; commit persists it in
// the state document beside the services' states, so a restart or a new leader (which adopts
// the persisted document) keeps it. A replica that does not lead records nothing: it serves the
// journal as it last read it.

// journalDecision records a decision's events from dec.journaled on, and its actions when
// withActions (the intents, before they are executed). The caller holds no lock.
func (d *Daemon) journalDecision(dec *decision, withActions bool, results []plan.Result, now time.Time) {
	c := journal.Context{Service: dec.svc, State: dec.next, Obs: dec.obs, Now: now}
	var entries []journal.Entry
	for _, ev := range dec.events[dec.journaled:] {
		entries = append(entries, journal.FromEvent(c, ev))
	}
	dec.journaled = len(dec.events)
	if withActions {
		for _, a := range dec.actions {
			entries = append(entries, journal.FromAction(c, a))
		}
	}
	for _, r := range results {
		if e := journal.FromResult(c, r); e != nil {
			entries = append(entries, *e)
		}
	}
	if len(entries) == 0 {
		return
	}
	d.mu.Lock()
	for _, e := range entries {
		d.journal.Add(e)
	}
	d.mu.Unlock()
	d.m.journalWritten.WithLabelValues(dec.svc.Name).Add(float64(len(entries)))
}

// journalRefusal records an operator command refused at submission (the machine, run on the
// last observation, refused it; it never reaches an iteration), as the machine words a refusal
// at an iteration. Only the leader records. The caller holds d.mu.
func (d *Daemon) journalRefusal(svc *config.Service, c failover.Command, refused string, now time.Time) {
	if !d.leader {
		return
	}
	who := c.Who
	if who == "" {
		who = "unknown"
	}
	desc := string(c.Verb)
	if c.Target != "" {
		desc += " " + c.Target
	}
	desc += " by " + who
	if c.Why != "" {
		desc += " (" + c.Why + ")"
	}
	obs, _ := d.kept(svc.Name)
	ctx := journal.Context{Service: svc, State: d.states[svc.Name], Obs: obs, Now: now}
	d.journal.Add(journal.FromEvent(ctx, failover.Event{At: now, Service: svc.Name, Kind: failover.EventCommand,
		Code: string(c.Verb) + "-refused", Region: c.Target, Reason: desc + ": refused at submission: " + refused}))
	d.m.journalWritten.WithLabelValues(svc.Name).Inc()
}

// journalJSON is the journal's encoding, re-encoded only when it changed (entries added or
// dropped); nil when empty. The caller holds d.mu.
func (d *Daemon) journalJSON() ([]byte, error) {
	if len(d.journal.Entries) == 0 && d.journal.Next == 0 {
		return nil, nil
	}
	key := [3]uint64{d.journal.Next, uint64(len(d.journal.Entries)), 0}
	if len(d.journal.Entries) > 0 {
		key[2] = d.journal.Entries[0].Seq
	}
	if d.journalRaw != nil && key == d.journalKey {
		return d.journalRaw, nil
	}
	raw, err := json.Marshal(d.journal)
	if err != nil {
		return nil, fmt.Errorf("encode the decision journal: %w", err)
	}
	d.journalRaw, d.journalKey = raw, key
	return raw, nil
}

// pruneJournal applies the configured bounds. The caller holds d.mu.
func (d *Daemon) pruneJournal(cfg *config.Config, now time.Time) {
	byAge, byCount := d.journal.Prune(now, journal.Bounds{MaxEntries: cfg.Journal.MaxEntries, MaxAge: cfg.Journal.MaxAge.D()})
	if byAge > 0 {
		d.m.journalDropped.WithLabelValues("age").Add(float64(byAge))
	}
	if byCount > 0 {
		d.m.journalDropped.WithLabelValues("count").Add(float64(byCount))
	}
	d.m.journalEntries.Set(float64(len(d.journal.Entries)))
}

// Journal answers /journal: the entries matching q (relative bounds resolved on the daemon's
// clock), oldest first. A service neither configured nor in the journal is
// api.ErrUnknownService.
func (d *Daemon) Journal(q journal.Query) (api.Journal, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clk.Now()
	if q.Service != "" && findService(d.cfg, q.Service) == nil && !d.journal.Has(q.Service) {
		return api.Journal{}, fmt.Errorf("%w %q (configured: %s)", api.ErrUnknownService, q.Service, serviceNames(d.cfg))
	}
	entries, more := d.journal.Select(q.Resolve(now))
	if entries == nil {
		entries = []journal.Entry{}
	}
	return api.Journal{Time: now, Leader: d.leader, Entries: entries, More: more}, nil
}

func serviceNames(cfg *config.Config) string {
	s := ""
	for i := range cfg.Services {
		if i > 0 {
			s += ", "
		}
		s += cfg.Services[i].Name
	}
	return s
}

// journalLink returns the ID of the newest journal entry of service whose kind is one of kinds,
// else of its newest entry ("" when it has none). The caller holds no lock.
func (d *Daemon) journalLink(service string, kinds ...failover.EventKind) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.journal.Last(service, kinds...)
	if !ok {
		e, ok = d.journal.Last(service)
	}
	if !ok {
		return ""
	}
	return e.ID
}
