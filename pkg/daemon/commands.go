package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
)

// Command queue bounds.
const (
	// MaxPendingCommands per service: a burst beyond it is refused (429), never queued without
	// bound. Identical commands in flight are coalesced and do not count twice.
	MaxPendingCommands = 4
	// MaxCommandText bounds who and why (bytes); longer is refused at submission.
	MaxCommandText = 256
	// keptOutcomes: outcomes kept for GET /v1/commands/{id}.
	keptOutcomes = 256
)

// pendingCommand is a queued command with its ID.
type pendingCommand struct {
	id  string
	cmd failover.Command
}

// checkText refuses free text that is too long or holds control characters: who and why are
// logged and shown on /status, where a newline or an escape sequence would forge lines.
func checkText(field, s string) error {
	if len(s) > MaxCommandText {
		return fmt.Errorf("%q is %d bytes; at most %d", field, len(s), MaxCommandText)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", field)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%q holds a control character at byte %d; use plain text on one line", field, i)
	}
	return nil
}

// Submit validates an operator command and queues it for the next iteration, or refuses it
// with the reason. Validation runs the decision core itself on the service's current state and
// last observation, after the commands already queued, so what would be refused at the next
// iteration (a failover to a region that is down, an abort with nothing to abort) is refused
// now. An identical command (verb and target) already queued is coalesced: its ID is returned
// and nothing is queued twice. The result's ID names the command for CommandResult.
func (d *Daemon) Submit(_ context.Context, service string, verb failover.Verb, cmd api.Command) (api.CommandResult, error) {
	cfg := d.Config()
	svc := findService(cfg, service)
	if svc == nil {
		return api.CommandResult{}, fmt.Errorf("%w %q", api.ErrUnknownService, service)
	}
	if !verb.Known() {
		return api.CommandResult{}, fmt.Errorf("unknown verb %q", verb)
	}
	if cmd.Target != "" && svc.Region(cmd.Target) == nil {
		return api.CommandResult{}, fmt.Errorf("service %s has no region %q", service, cmd.Target)
	}
	if err := errors.Join(checkText("who", cmd.Who), checkText("why", cmd.Why)); err != nil {
		return api.CommandResult{}, err
	}
	now := d.clk.Now()
	fc := failover.Command{Verb: verb, Target: cmd.Target, Who: cmd.Who, Why: cmd.Why, At: now}

	d.mu.Lock()
	queue := d.commands[service]
	for _, p := range queue {
		if p.cmd.Verb == verb && p.cmd.Target == cmd.Target {
			d.mu.Unlock()
			return api.CommandResult{Accepted: true, ID: p.id, Status: api.CommandPending, Coalesced: true,
				Message: fmt.Sprintf("%s for %s is already queued (%s); coalesced", verb, service, p.id)}, nil
		}
	}
	if len(queue) >= MaxPendingCommands {
		d.mu.Unlock()
		return api.CommandResult{}, fmt.Errorf("%w: %s has %d commands waiting for the next iteration", api.ErrQueueFull, service, len(queue))
	}
	if refused := d.preflight(svc, queue, fc, now); refused != "" {
		d.journalRefusal(svc, fc, refused, now)
		d.mu.Unlock()
		return api.CommandResult{}, fmt.Errorf("%s refused: %s", verb, refused)
	}
	d.cmdSeq++
	id := strconv.FormatInt(now.Unix(), 36) + "-" + strconv.FormatUint(d.cmdSeq, 10)
	d.commands[service] = append(queue, pendingCommand{id: id, cmd: fc})
	res := api.CommandResult{Accepted: true, ID: id, Status: api.CommandPending,
		Message: fmt.Sprintf("%s queued for %s as %s; applied at the next loop iteration", verb, service, id)}
	d.record(id, res)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return res, nil
}

// preflight runs the decision core on a copy of the service's state with the queued commands
// and cmd, and returns why cmd would be refused ("" accepted). Before the first observation it
// accepts: the iteration decides. The caller holds d.mu.
func (d *Daemon) preflight(svc *config.Service, queue []pendingCommand, cmd failover.Command, now time.Time) string {
	obs, ok := d.kept(svc.Name)
	if !ok {
		return ""
	}
	for _, p := range queue {
		obs.Commands = append(obs.Commands, p.cmd)
	}
	obs.Commands = append(obs.Commands, cmd)
	_, _, evs := failover.Step(svc, d.states[svc.Name], obs, now)
	var last *failover.Event
	for i := range evs {
		if evs[i].Kind == failover.EventCommand {
			last = &evs[i]
		}
	}
	if last != nil && strings.HasSuffix(last.Code, "-refused") {
		_, why, _ := strings.Cut(last.Reason, ": refused: ")
		return why
	}
	return ""
}

// settle records the outcome of the commands an iteration passed to the machine, from the
// command events it returned (one per command, in order). The caller holds no lock.
func (d *Daemon) settle(cmds []pendingCommand, events []failover.Event) {
	if len(cmds) == 0 {
		return
	}
	var outcomes []failover.Event
	for _, ev := range events {
		if ev.Kind == failover.EventCommand {
			outcomes = append(outcomes, ev)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, p := range cmds {
		res := api.CommandResult{Accepted: true, ID: p.id, Status: api.CommandApplied}
		switch {
		case i >= len(outcomes):
			res.Status, res.Accepted, res.Message = api.CommandRefused, false, "not applied: this replica does not act (not leader)"
		case strings.HasSuffix(outcomes[i].Code, "-refused"):
			res.Status, res.Accepted, res.Message = api.CommandRefused, false, outcomes[i].Reason
		default:
			res.Message = outcomes[i].Reason
		}
		d.record(p.id, res)
	}
}

// record keeps a command's latest result (bounded, oldest dropped). The caller holds d.mu.
func (d *Daemon) record(id string, res api.CommandResult) {
	if _, ok := d.outcomes[id]; !ok {
		d.outcomeOrder = append(d.outcomeOrder, id)
		if len(d.outcomeOrder) > keptOutcomes {
			delete(d.outcomes, d.outcomeOrder[0])
			d.outcomeOrder = d.outcomeOrder[1:]
		}
	}
	d.outcomes[id] = res
}

// CommandResult returns a submitted command's result: pending until the iteration that applies
// it, then applied or refused with the machine's reason.
func (d *Daemon) CommandResult(id string) (api.CommandResult, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	res, ok := d.outcomes[id]
	return res, ok
}
