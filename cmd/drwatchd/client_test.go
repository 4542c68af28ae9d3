package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/server"
)

type adminFake struct{ got []string }

func (a *adminFake) Status() api.Status {
	return api.Status{Services: []api.ServiceStatus{{
		Name:    "fraud-scorer",
		State:   failover.State{State: failover.Paused, Active: "us-central1", Reason: "paused by alice: drill"},
		Regions: []api.RegionStatus{{Name: "us-central1", Weight: 100}, {Name: "us-east1", Weight: 0}},
	}}}
}

func (a *adminFake) Submit(_ context.Context, service string, verb failover.Verb, cmd api.Command) (api.CommandResult, error) {
	a.got = append(a.got, service+" "+string(verb)+" "+cmd.Target+" "+cmd.Who+": "+cmd.Why)
	return api.CommandResult{Accepted: true, Message: string(verb) + " queued"}, nil
}

// The admin verbs of the CLI against the real admin handler: the token is read from a file and
// sent; a wrong token is refused; status prints a table.
func TestAdminVerbs(t *testing.T) {
	fake := &adminFake{}
	srv := httptest.NewServer(server.Admin(fake, "right-token", zaptest.NewLogger(t)))
	defer srv.Close()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("right-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"failover", "--addr", srv.URL, "--token-file", good, "--who", "alice", "--why", "drill", "--to", "us-east1", "fraud-scorer"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "failover queued") {
		t.Fatalf("failover: exit %d, %q %q", code, out.String(), errb.String())
	}
	if len(fake.got) != 1 || fake.got[0] != "fraud-scorer failover us-east1 alice: drill" {
		t.Fatalf("submitted %v", fake.got)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"pause", "--addr", srv.URL, "--token-file", bad, "--why", "x", "fraud-scorer"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Fatalf("wrong token: exit %d, %q", code, errb.String())
	}
	if code := run([]string{"pause", "--addr", srv.URL, "--token-file", good, "fraud-scorer"}, &out, &errb); code != 2 {
		t.Fatalf("missing --why: exit %d", code)
	}
	if len(fake.got) != 1 {
		t.Fatalf("refused commands reached the daemon: %v", fake.got)
	}
	out.Reset()
	if code := run([]string{"status", "--addr", srv.URL, "--token-file", good}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d %q", code, errb.String())
	}
	for _, want := range []string{"fraud-scorer", "paused", "us-central1=100,us-east1=0", "paused by alice"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

// `drwatchd drill` against a running daemon sets up its admin client as the other verbs do
// (clientFlags.client): the token file is read and the token sent.
func TestDrillUsesTheAdminClient(t *testing.T) {
	fake := &adminFake{}
	srv := httptest.NewServer(server.Admin(fake, "right-token", zaptest.NewLogger(t)))
	defer srv.Close()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("right-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	drill := func(tokenFile string) (int, string) {
		var out, errb bytes.Buffer
		code := run([]string{"drill", "--addr", srv.URL, "--token-file", tokenFile, "--service", "fraud-scorer", "--poll", "1ms"}, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := drill(filepath.Join(dir, "missing")); code != 1 || !strings.Contains(out, "drwatchd drill: read admin token:") {
		t.Fatalf("missing token file: exit %d\n%s", code, out)
	}
	if code, out := drill(bad); code == 0 || !strings.Contains(out, "401") {
		t.Fatalf("wrong token: exit %d, want a failure naming the 401\n%s", code, out)
	}
	// The right token reaches the daemon: the fake's service is paused, so the pre-check refuses.
	if code, out := drill(good); code != 3 || !strings.Contains(out, "paused") {
		t.Fatalf("right token: exit %d, want 3 (refused by the pre-check: the service is paused)\n%s", code, out)
	}
	if len(fake.got) != 0 {
		t.Fatalf("a refused drill submitted commands: %v", fake.got)
	}
}
