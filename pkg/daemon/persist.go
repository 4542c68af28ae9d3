package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/journal"
)

type document struct {
	Version  int                       `json:"version"`
	Services map[string]failover.State `json:"services"`
	// Journal is the decision journal (absent in files written before it existed).
	Journal *journal.Journal `json:"journal,omitempty"`
}

// documentOut is document as written: the journal pre-encoded (journalRaw).
type documentOut struct {
	Version  int                       `json:"version"`
	Services map[string]failover.State `json:"services"`
	Journal  json.RawMessage           `json:"journal,omitempty"`
}

// load reads the persisted state, if any.
func (d *Daemon) load(ctx context.Context) error {
	doc, raw, err := d.readState(ctx)
	if err != nil || raw == nil {
		return err
	}
	for name, st := range doc.Services {
		d.states[name] = st
		d.logResume(name, st)
	}
	d.setJournal(doc.Journal)
	d.lastSaved = raw
	return nil
}

// setJournal installs the persisted journal (nil: none was persisted).
func (d *Daemon) setJournal(j *journal.Journal) {
	d.journal = journal.Journal{}
	if j != nil {
		d.journal = j.Clone()
	}
	d.journalSaved = d.journal.Next
	d.journalRaw, d.journalKey = nil, [3]uint64{}
}

// readState reads and decodes the persisted document (nil raw: none).
func (d *Daemon) readState(ctx context.Context) (document, []byte, error) {
	if d.parts.Store == nil {
		return document{}, nil, nil
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := d.parts.Store.Load(lctx)
	if err != nil {
		return document{}, nil, fmt.Errorf("load persisted state: %w", err)
	}
	if raw == nil {
		d.log.Info("no persisted state: starting fresh")
		return document{}, nil, nil
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return document{}, nil, fmt.Errorf("decode %s: %w", d.storeName(), err)
	}
	if doc.Version != 1 {
		return document{}, nil, fmt.Errorf("%s: version: %d; this build reads version 1", d.storeName(), doc.Version)
	}
	if err := checkDocument(doc); err != nil {
		return document{}, nil, fmt.Errorf("%s cannot be resumed (fix or move it aside; it is not replaced automatically): %w", d.storeName(), err)
	}
	return doc, raw, nil
}

// checkDocument refuses a document with a state this build cannot act on: an unknown state name
// would leave its service unevaluated, silently.
func checkDocument(doc document) error {
	names := make([]string, 0, len(doc.Services))
	for name := range doc.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		for _, p := range failover.CheckPersisted(doc.Services[name]) {
			errs = append(errs, fmt.Errorf("services.%s.%s", name, p))
		}
	}
	return errors.Join(errs...)
}

// storeName names the state store in messages (its file or object).
func (d *Daemon) storeName() string {
	if n, ok := d.parts.Store.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "persisted state"
}

func (d *Daemon) logResume(name string, st failover.State) {
	if st.Plan != nil {
		d.log.Info("resuming plan in progress", zap.String("service", name), zap.String("state", string(st.State)),
			zap.String("from", st.Plan.From), zap.String("to", st.Plan.To), zap.Int("step", st.Plan.Step),
			zap.String("phase", string(st.Plan.Phase)))
	}
}

// adopt makes the persisted state this replica's before it leads under token for the first
// time: the previous leader's record (plan in progress, failovers, cooldown, last shift) is
// authoritative, not what this replica observed while following. Services the configuration
// no longer has are adopted only with a plan in progress, as apply keeps them.
func (d *Daemon) adopt(ctx context.Context, token int64) error {
	d.mu.Lock()
	done := d.adopted && d.adoptedToken == token
	d.mu.Unlock()
	if done {
		return nil
	}
	doc, raw, err := d.readState(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, st := range doc.Services {
		if findService(d.cfg, name) == nil && st.Plan == nil {
			continue
		}
		d.states[name] = st
		d.logResume(name, st)
	}
	if raw != nil {
		// The previous leader's journal is the one to continue: entries this replica has
		// not recorded (it records none while following) and the sequence of IDs.
		d.setJournal(doc.Journal)
		d.lastSaved = raw
	}
	d.adopted, d.adoptedToken = true, token
	d.log.Info("leading: adopted the persisted state", zap.Int64("token", token))
	return nil
}

// StoreError is the last state write's failure, "" when the last write succeeded.
func (d *Daemon) StoreError() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.storeErr
}
