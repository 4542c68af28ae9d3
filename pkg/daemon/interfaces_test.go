package daemon_test

import (
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/server"
)

// The daemon serves the status page, the admin API and /journal. The assertions live in a test
// so that pkg/daemon does not import pkg/server (the server depends on the daemon's behaviour
// through its interfaces, never the other way round).
var (
	_ server.Daemon        = (*daemon.Daemon)(nil)
	_ server.JournalReader = (*daemon.Daemon)(nil)
)
