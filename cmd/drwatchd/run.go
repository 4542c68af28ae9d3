package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	oklog "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/gcdefaults"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/logging"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/version"
)

type runFlags struct {
	config    string
	sim       bool
	speed     float64
	logLevel  string
	logFormat string
	listen    string
	// Set by tests: a channel receiving reload/shutdown signals instead of the process's.
	signals chan os.Signal
	// started, when set, receives the bound public address once serving.
	started chan<- string
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	fs.StringVar(&f.config, "config", "/etc/drwatchd/drwatchd.yaml", "config file")
	fs.BoolVar(&f.sim, "sim", false, "run on the embedded simulated cloud with the demo config (unless --config is given)")
	fs.Float64Var(&f.speed, "speed", 6, "with --sim: simulated seconds per wall second")
	fs.StringVar(&f.logLevel, "log-level", "", "debug | info | warn | error (default: the config's, else info)")
	fs.StringVar(&f.logFormat, "log-format", "", "json | console (default: json; console with --sim)")
	fs.StringVar(&f.listen, "listen", "", "public listen address (default: the config's; $PORT wins on Cloud Run)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	configSet := false
	fs.Visit(func(fl *flag.Flag) { configSet = configSet || fl.Name == "config" })
	if f.sim && !configSet {
		f.config = ""
	}
	if f.speed <= 0 {
		fmt.Fprintln(stderr, "drwatchd run: --speed must be > 0")
		return 2
	}
	return runDaemon(context.Background(), f, stdout, stderr)
}

// daemonMetrics are main's own metrics: build info and config reloads.
type daemonMetrics struct {
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	reloads    *prometheus.CounterVec
	restart    prometheus.Gauge
}

func newDaemonMetrics(reg prometheus.Registerer) *daemonMetrics {
	f := promauto.With(reg)
	f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "drwatchd_build_info",
		Help: "Build information; always 1.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(version.Version, version.Revision, version.GoVersion()).Set(1)
	return &daemonMetrics{
		reloadOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "drwatchd_config_last_reload_successful",
			Help: "1 if the last configuration load or reload succeeded.",
		}),
		reloadTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "drwatchd_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (wall clock).",
		}),
		restart: f.NewGauge(prometheus.GaugeOpts{
			Name: "drwatchd_config_restart_required",
			Help: "1 when the configuration in force changes settings a reload cannot apply (listen addresses, state store, leader election, log format): restart to apply them.",
		}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_config_reloads_total",
			Help: "Configuration reloads by result (success, failure).",
		}, []string{"result"}),
	}
}

func loadConfig(f runFlags, lookup func(string) (string, bool)) (*config.Config, error) {
	if f.config == "" {
		return config.Demo(lookup)
	}
	return config.Load(f.config, config.WithLookupEnv(lookup))
}

func runDaemon(ctx context.Context, f runFlags, stdout, stderr io.Writer) int {
	// The collector's defaults first, before the configuration and the clients allocate:
	// GOGC=75 and GOMEMLIMIT at 0.8 x the cgroup's limit, each unless the operator set it.
	gc := gcdefaults.Apply(os.LookupEnv, os.DirFS("/"))
	var env *simEnv
	lookup := os.LookupEnv
	if f.sim {
		var err error
		env, err = startSim(ctx, f, stdout)
		if err != nil {
			fmt.Fprintln(stderr, "drwatchd: start simulated cloud:", err)
			return 1
		}
		defer env.Close()
		lookup = env.lookup
	}
	cfg, err := loadConfig(f, lookup)
	if err != nil {
		printProblems(stderr, f.config, err)
		return 1
	}
	level, format := cfg.Log.Level, cfg.Log.Format
	if f.logLevel != "" {
		level = f.logLevel
	}
	if f.logFormat != "" {
		format = f.logFormat
	} else if f.sim {
		format = "console"
	}
	log, logLevel, err := logging.NewLevel(stderr, level, format)
	if err != nil {
		fmt.Fprintln(stderr, "drwatchd:", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.String("version", version.String()), zap.Bool("sim", f.sim), zap.Int("services", len(cfg.Services)))
	logGC(log, gc)

	// A gauges.Registry: /metrics streams the per-region and per-service families from their
	// records instead of gathering every series at once (docs/metrics.md).
	reg := gauges.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dm := newDaemonMetrics(reg)
	dm.reloads.WithLabelValues("success")
	dm.reloads.WithLabelValues("failure")
	dm.reloadOK.Set(1)
	dm.reloadTime.SetToCurrentTime()

	var parts daemon.Parts
	var closeParts func()
	if env != nil {
		parts, closeParts, err = env.parts(ctx, cfg, log, reg)
	} else {
		parts, closeParts, err = cloudParts(ctx, gcp.Options{}, cfg, log, reg)
	}
	if err != nil {
		log.Error("build cloud clients", zap.Error(err))
		return 1
	}
	defer closeParts()
	opts := daemon.Options{Clock: wallClock(), Log: log, Registry: reg}
	if env != nil {
		opts.Clock = env.clock()
		opts.SyncProbes = true
	}
	d, err := daemon.New(ctx, cfg, parts, opts)
	if err != nil {
		log.Error("start daemon", zap.Error(err))
		return 1
	}

	var stopping atomic.Bool
	// Not ready while state writes fail: the daemon acts, but a restart would lose its plan.
	ready := func() bool { return !stopping.Load() && d.Ready() && d.StoreError() == "" }
	listen := cfg.Server.Listen
	if f.listen != "" {
		listen = f.listen
	}
	if port := os.Getenv("PORT"); port != "" { // Cloud Run
		host, _, _ := net.SplitHostPort(listen)
		listen = net.JoinHostPort(host, port)
	}
	pub, err := server.Listen(listen, server.Public(d, reg, ready, log.Named("http")))
	if err != nil {
		log.Error("public listener", zap.Error(err))
		return 1
	}
	var admin *server.Listener
	var adminToken *server.Token
	if cfg.Admin.Enabled {
		for _, w := range adminWarnings(cfg.Admin) {
			log.Warn(w, zap.String("listen", cfg.Admin.Listen), zap.String("token_file", cfg.Admin.TokenFile))
		}
		tok, err := os.ReadFile(cfg.Admin.TokenFile)
		if err != nil || strings.TrimSpace(string(tok)) == "" {
			log.Error("admin.token_file: cannot read a non-empty token", zap.String("path", cfg.Admin.TokenFile), zap.Error(err))
			return 1
		}
		adminToken = server.NewToken(strings.TrimSpace(string(tok)))
		admin, err = server.Listen(cfg.Admin.Listen, server.AdminWithToken(d, adminToken, log))
		if err != nil {
			log.Error("admin listener", zap.Error(err))
			return 1
		}
		log.Info("admin API listening", zap.String("addr", admin.Addr()))
	}
	log.Info("serving", zap.String("addr", pub.Addr()), zap.String("metrics", "http://"+pub.Addr()+"/metrics"),
		zap.String("journal", "http://"+pub.Addr()+"/journal"))
	if len(cfg.Services) > 0 {
		// Where to read why it acts: the decision journal, told in sentences.
		log.Info("read the decision journal with: drwatchd explain "+cfg.Services[0].Name+" --addr http://"+pub.Addr(),
			zap.String("service", cfg.Services[0].Name))
	}
	if f.started != nil {
		f.started <- pub.Addr()
	}

	sigs := f.signals
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}
	shutdownBound := cfg.Server.ShutdownTimeout.D()

	var g oklog.Group
	loopCtx, stopLoop := context.WithCancel(ctx)
	// Signals: SIGHUP reloads; SIGINT/SIGTERM end the group.
	{
		sigCtx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			for {
				select {
				case <-sigCtx.Done():
					return nil
				case s := <-sigs:
					if s == syscall.SIGHUP {
						reload(f, lookup, d, dm, log, live{started: cfg, level: logLevel, token: adminToken, alerts: parts.Alerts})
						continue
					}
					log.Info("shutting down", zap.String("signal", s.String()))
					return nil
				}
			}
		}, func(error) { cancel() })
	}
	// The loop, or the simulation driver that advances the virtual world in lockstep with it.
	g.Add(func() error {
		if env != nil {
			return env.drive(loopCtx, d, log)
		}
		return d.Run(loopCtx)
	}, func(error) {
		stopping.Store(true) // not ready first
		stopLoop()           // the iteration in progress finishes and persists
	})
	g.Add(func() error { return d.RunProbes(loopCtx) }, func(error) { stopLoop() })
	if parts.Alerts != nil {
		actx, cancel := context.WithCancel(ctx)
		g.Add(func() error { parts.Alerts.Run(actx); return nil }, func(error) { cancel() })
	}
	// systemd: READY=1 once the first observation cycle is done, then watchdog pings while the
	// loop keeps iterating. No-ops when not under systemd.
	{
		sdCtx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return systemdNotify(sdCtx, d, cfg, log) }, func(error) { cancel() })
	}
	for _, l := range []*server.Listener{pub, admin} {
		if l == nil {
			continue
		}
		g.Add(l.Serve, func(error) {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownBound)
			defer cancel()
			if err := l.Shutdown(sctx); err != nil {
				log.Warn("http shutdown", zap.String("addr", l.Addr()), zap.Error(err))
			}
		})
	}
	err = g.Run()
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped with error", zap.Error(err))
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}

// live is what a reload can change besides the daemon's own config: the log level, the admin
// token, the Alertmanagers; started is the config the process started with (listeners, state
// store, leader election and log format are bound to it until a restart).
type live struct {
	started *config.Config
	level   zap.AtomicLevel
	token   *server.Token // nil: admin API off
	alerts  daemon.AlertSink
}

// reload loads the config again and applies every setting it can: services and loop (the
// daemon), log level, admin token file, Alertmanagers and external URL. Settings bound to the
// process (listen addresses, state store, leader election, log format) are reported as
// "restart required" (log and drwatchd_config_restart_required), never claimed applied. A bad
// config, an unreadable token file or a refused daemon reload is rejected, logged and counted,
// and the old config stays.
func reload(f runFlags, lookup func(string) (string, bool), d *daemon.Daemon, dm *daemonMetrics, log *zap.Logger, l live) {
	fail := func(err error) {
		dm.reloads.WithLabelValues("failure").Inc()
		dm.reloadOK.Set(0)
		log.Error("config reload rejected; the previous config stays in force", zap.String("path", f.config), zap.Error(err))
	}
	cfg, err := loadConfig(f, lookup)
	if err != nil {
		fail(err)
		return
	}
	var tok string
	if l.token != nil && cfg.Admin.Enabled {
		b, err := os.ReadFile(cfg.Admin.TokenFile)
		if err != nil || strings.TrimSpace(string(b)) == "" {
			fail(fmt.Errorf("admin.token_file: cannot read a non-empty token from %s: %v", cfg.Admin.TokenFile, err))
			return
		}
		tok = strings.TrimSpace(string(b))
		for _, w := range adminWarnings(cfg.Admin) {
			log.Warn(w, zap.String("listen", cfg.Admin.Listen), zap.String("token_file", cfg.Admin.TokenFile))
		}
	}
	if err := d.Reload(cfg); err != nil {
		fail(err)
		return
	}
	applied := []string{"services", "loop", "alerting.paused_too_long", "journal"}
	if f.logLevel == "" { // the flag wins over the file
		if lvl, err := logging.ParseLevel(cfg.Log.Level); err == nil && lvl != l.level.Level() {
			l.level.SetLevel(lvl)
			applied = append(applied, "log.level")
		}
	}
	if tok != "" {
		l.token.Set(tok)
		applied = append(applied, "admin.token_file")
	}
	if n, ok := l.alerts.(interface{ Update(config.Alerting) error }); ok {
		if err := n.Update(cfg.Alerting); err != nil {
			log.Error("alerting: the new Alertmanagers could not be installed; the previous ones stay", zap.Error(err))
		} else {
			applied = append(applied, "alerting.alertmanagers", "alerting.external_url")
		}
	}
	dm.reloads.WithLabelValues("success").Inc()
	dm.reloadOK.Set(1)
	dm.reloadTime.SetToCurrentTime()
	restart := restartRequired(l.started, cfg, f)
	if len(restart) > 0 {
		dm.restart.Set(1)
		log.Warn("config reloaded, but some settings need a restart to apply; they keep their values from the start",
			zap.String("path", f.config), zap.Strings("restart_required", restart))
	} else {
		dm.restart.Set(0)
	}
	log.Info("config reloaded", zap.String("path", f.config), zap.Int("services", len(cfg.Services)), zap.Strings("applied", applied))
}

// restartRequired lists the settings of cfg that differ from those the process started with
// and that only a restart applies (flags that override them are not reported).
// logGC logs the garbage collector's settings in force and where each came from (also on
// /metrics: go_gc_gogc_percent, go_gc_gomemlimit_bytes).
func logGC(log *zap.Logger, s gcdefaults.Settings) {
	limit := "none"
	if s.MemoryLimit != math.MaxInt64 {
		limit = fmt.Sprintf("%.0fMiB", float64(s.MemoryLimit)/(1<<20))
	}
	fields := []zap.Field{zap.Int("gogc", s.GOGC), zap.String("gogc_source", s.GOGCSource),
		zap.String("gomemlimit", limit), zap.String("gomemlimit_source", s.LimitSource)}
	if s.CgroupLimit > 0 {
		fields = append(fields, zap.Int64("cgroup_memory_limit_bytes", s.CgroupLimit))
	}
	log.Info("garbage collector", fields...)
	if s.CgroupErr != nil {
		log.Warn("cgroup memory limit unreadable: running without a soft memory limit (set GOMEMLIMIT)", zap.Error(s.CgroupErr))
	}
}

func restartRequired(started, cfg *config.Config, f runFlags) []string {
	var out []string
	diff := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	if f.listen == "" {
		diff("server.listen", started.Server.Listen, cfg.Server.Listen)
	}
	diff("server.shutdown_timeout", started.Server.ShutdownTimeout, cfg.Server.ShutdownTimeout)
	diff("admin.enabled", started.Admin.Enabled, cfg.Admin.Enabled)
	diff("admin.listen", started.Admin.Listen, cfg.Admin.Listen)
	if !started.Admin.Enabled {
		diff("admin.token_file", started.Admin.TokenFile, cfg.Admin.TokenFile)
	}
	diff("state", started.State, cfg.State)
	diff("leader", started.Leader, cfg.Leader)
	if f.logFormat == "" {
		diff("log.format", started.Log.Format, cfg.Log.Format)
	}
	return out
}

func systemdNotify(ctx context.Context, d *daemon.Daemon, cfg *config.Config, log *zap.Logger) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for !d.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
	if ok, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady); err != nil {
		log.Warn("sd_notify READY", zap.Error(err))
	} else if ok {
		log.Info("told systemd we are ready")
	}
	wd, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || wd == 0 {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(wd / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			// Ping only while the loop progresses: a wedged loop must get us restarted.
			if d.SinceLastTick() < wd {
				_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
			} else {
				log.Error("loop stalled: withholding the systemd watchdog ping", zap.Duration("since_last_tick", d.SinceLastTick()))
			}
		}
	}
}

// adminWarnings names what exposes the admin token: a token file other users can read, and an
// admin listener off loopback (the API has no TLS of its own: the bearer token would cross the
// network in clear unless a TLS proxy fronts it).
func adminWarnings(a config.Admin) []string {
	var out []string
	if fi, err := os.Stat(a.TokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		out = append(out, fmt.Sprintf("admin.token_file is readable by other users (mode %04o): anyone on the host can run admin commands; chmod 600 it", fi.Mode().Perm()))
	}
	host, _, err := net.SplitHostPort(a.Listen)
	if err == nil {
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			out = append(out, "admin.listen is not a loopback address and the admin API has no TLS: the bearer token crosses the network in clear; bind 127.0.0.1 or put a TLS proxy in front")
		}
	}
	return out
}
