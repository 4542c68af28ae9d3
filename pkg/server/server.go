// Package server is drwatchd's HTTP surface: /metrics, /healthz, /readyz, /status, /journal and
// the status page on the public listener, and the token-authenticated admin API on its own listener.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/journal"
)

// Daemon is what the server needs from the daemon: a read-only view and a command inbox.
type Daemon interface {
	Status() api.Status
	// Submit queues an operator command for a service; it returns an error when the service is
	// unknown or the command is malformed.
	Submit(ctx context.Context, service string, verb failover.Verb, cmd api.Command) (api.CommandResult, error)
}

// Liveness is implemented by a daemon that can tell whether its loop still progresses; /healthz
// answers 503 with the reason when Live returns an error.
type Liveness interface {
	Live() error
}

// CommandResults is implemented by a daemon that reports a submitted command's outcome, served
// at GET /v1/commands/{id}.
type CommandResults interface {
	CommandResult(id string) (api.CommandResult, bool)
}

// JournalReader is implemented by a daemon that keeps a decision journal, served at GET
// /journal (docs/journal.md). The status page may call it for a service's last entries
// (journal.Query{Service: name, Limit: n}).
type JournalReader interface {
	// Journal returns the entries matching q, oldest first; an error wrapping
	// api.ErrUnknownService for a service neither configured nor in the journal.
	Journal(q journal.Query) (api.Journal, error)
}

// Public returns the handler of the public listener.
func Public(d Daemon, gatherer prometheus.Gatherer, ready func() bool, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Metrics(gatherer, log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// Liveness: a daemon whose loop is stuck is not alive, whatever its HTTP server says.
		if l, ok := d.(Liveness); ok {
			if err := l.Live(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("GET /journal", func(w http.ResponseWriter, r *http.Request) {
		jr, ok := d.(JournalReader)
		if !ok {
			writeJSON(w, http.StatusNotImplemented, errorBody{Error: "this daemon keeps no decision journal"})
			return
		}
		q, err := journal.ParseQuery(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
			return
		}
		out, err := jr.Journal(q)
		switch {
		case errors.Is(err, api.ErrUnknownService):
			writeJSON(w, http.StatusNotFound, errorBody{Error: err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		default:
			writeJSON(w, http.StatusOK, out)
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		st := d.Status()
		renderStatusPage(w, st, pageJournals(d, st))
	})
	return mux
}

// Admin returns the handler of the admin listener. token is the bearer token; every request
// without it is refused with 401. Commands are logged with who, why and the peer address.
func Admin(d Daemon, token string, log *zap.Logger) http.Handler {
	return AdminWithToken(d, NewToken(token), log)
}

// Token is the admin bearer token, replaceable while serving (a config reload re-reads the
// token file: a leaked token is rotated without a restart). Only its hash is kept.
type Token struct{ h atomic.Pointer[[32]byte] }

// NewToken returns a Token holding tok.
func NewToken(tok string) *Token {
	t := &Token{}
	t.Set(tok)
	return t
}

// Set replaces the token; requests from then on need the new one.
func (t *Token) Set(tok string) {
	h := sha256.Sum256([]byte(tok))
	t.h.Store(&h)
}

// AdminWithToken is Admin with a replaceable token.
func AdminWithToken(d Daemon, token *Token, log *zap.Logger) http.Handler {
	log = log.Named("admin")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("POST /v1/services/{service}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		service, verb := r.PathValue("service"), failover.Verb(r.PathValue("verb"))
		if !verb.Known() {
			writeJSON(w, http.StatusNotFound, api.CommandResult{Message: fmt.Sprintf("unknown verb %q (want one of %s)", verb, failover.VerbList())})
			return
		}
		var cmd api.Command
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cmd); err != nil {
			writeJSON(w, http.StatusBadRequest, api.CommandResult{Message: "bad request body: " + err.Error()})
			return
		}
		if strings.TrimSpace(cmd.Why) == "" {
			writeJSON(w, http.StatusBadRequest, api.CommandResult{Message: `"why" is required: every command is logged with who and why`})
			return
		}
		if cmd.Who == "" {
			cmd.Who = "unknown"
		}
		log.Info("admin command",
			zap.String("service", service), zap.String("verb", string(verb)), zap.String("target", cmd.Target),
			zap.String("who", cmd.Who), zap.String("why", cmd.Why), zap.String("peer", r.RemoteAddr))
		res, err := d.Submit(r.Context(), service, verb, cmd)
		switch {
		case errors.Is(err, api.ErrUnknownService):
			writeJSON(w, http.StatusNotFound, api.CommandResult{Message: err.Error(), Status: api.CommandRefused})
		case errors.Is(err, api.ErrQueueFull):
			writeJSON(w, http.StatusTooManyRequests, api.CommandResult{Message: err.Error(), Status: api.CommandRefused})
		case err != nil:
			writeJSON(w, http.StatusConflict, api.CommandResult{Message: err.Error(), Status: api.CommandRefused})
		default:
			writeJSON(w, http.StatusAccepted, res)
		}
	})
	mux.HandleFunc("GET /v1/commands/{id}", func(w http.ResponseWriter, r *http.Request) {
		cr, ok := d.(CommandResults)
		if !ok {
			writeJSON(w, http.StatusNotImplemented, api.CommandResult{Message: "this daemon does not report command outcomes"})
			return
		}
		res, found := cr.CommandResult(r.PathValue("id"))
		if !found {
			writeJSON(w, http.StatusNotFound, api.CommandResult{Message: "no command " + strconv.Quote(r.PathValue("id"))})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	return authenticate(mux, token, log)
}

func authenticate(next http.Handler, token *Token, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := *token.h.Load()
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Compare hashes in constant time: neither the token's content nor its length leaks.
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			log.Warn("admin request refused: missing or wrong bearer token",
				zap.String("peer", r.RemoteAddr), zap.String("path", r.URL.Path))
			w.Header().Set("WWW-Authenticate", `Bearer realm="drwatchd"`)
			writeJSON(w, http.StatusUnauthorized, api.CommandResult{Message: "missing or wrong bearer token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// errorBody is the JSON body of an error answer on the public listener.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Listener serves h on addr until Shutdown.
type Listener struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr (":0" picks a free port) without serving yet.
func Listen(addr string, h http.Handler) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &Listener{ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}}, nil
}

// Addr is the bound address.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Serve blocks until the server is shut down; a clean shutdown returns nil.
func (l *Listener) Serve() error {
	if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting and waits for in-flight requests up to ctx's deadline.
func (l *Listener) Shutdown(ctx context.Context) error { return l.srv.Shutdown(ctx) }

// pageJournals reads each service's newest journal entries for the status page, when the
// daemon keeps a journal. A service whose journal cannot be read shows its state's events.
func pageJournals(d Daemon, st api.Status) map[string][]pageEvent {
	jr, ok := d.(JournalReader)
	if !ok {
		return nil
	}
	out := make(map[string][]pageEvent, len(st.Services))
	for _, s := range st.Services {
		j, err := jr.Journal(journal.Query{Service: s.Name, Limit: pageJournalEntries})
		if err != nil {
			continue
		}
		out[s.Name] = pageEventsFromJournal(j.Entries, pageJournalEntries)
	}
	return out
}

// pageJournalEntries is how many journal entries the status page shows per service.
const pageJournalEntries = 8
