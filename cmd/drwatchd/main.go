// Command drwatchd keeps multi-region Vertex AI model serving alive through regional outages.
//
//	drwatchd run [--config FILE | --sim]   the daemon
//	drwatchd check-config FILE             validate a config and print every problem
//	drwatchd preflight --config FILE|--sim read-only checks of the cloud, as a checklist
//	drwatchd simulate --scenario FILE      run a scenario on the simulated cloud, report JSON
//	drwatchd backtest --config FILE --from T1 [--to T2]   replay history in dry run
//	drwatchd drill --service NAME          a planned failover and failback, measured
//	drwatchd explain SERVICE [--since 2h]  the decision journal, told in sentences
//	drwatchd status|pause|resume|failover|failback|abort   admin client verbs
//	drwatchd version
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run the daemon (--sim: on the embedded simulated cloud)", cmdRun},
		{"check-config", "validate a config file and print every problem", cmdCheckConfig},
		{"preflight", "read-only checks of the configured cloud, as a checklist (--sim: the simulated one)", cmdPreflight},
		{"simulate", "run a scenario on the simulated cloud and write a JSON report", cmdSimulate},
		{"backtest", "replay Cloud Monitoring history through the decision core in dry run (--sim: a scenario's)", cmdBacktest},
		{"drill", "planned failover and failback of one service, with measured RTO", cmdDrill},
		{"status", "show every service's state (admin API)", cmdStatus},
		{"explain", "tell a service's recent decisions and their evidence from its journal (SERVICE [--since 2h])", cmdExplain},
		{"pause", "freeze a service: observations continue, actions stop", adminVerb(failover.VerbPause)},
		{"resume", "end a pause", adminVerb(failover.VerbResume)},
		{"failover", "shift a service to a standby (--to REGION)", adminVerb(failover.VerbFailover)},
		{"failback", "shift a service back to its primary", adminVerb(failover.VerbFailback)},
		{"abort", "stop a shift in progress and hold the current split", adminVerb(failover.VerbAbort)},
		{"version", "print the version", cmdVersion},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "drwatchd: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("usage: drwatchd COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-13s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'drwatchd COMMAND -h' for a command's flags.\n")
	_, _ = io.WriteString(w, b.String())
}
