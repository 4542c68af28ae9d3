package notify

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// An alert that names its journal entry carries it as an annotation, and a link to it under the
// external URL.
func TestAlertLinksItsJournalEntry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	am := newFakeAM(t, 0)
	n := newTestNotifier(t, prometheus.NewPedanticRegistry(), &sleeps{}, 0, am.srv.URL)
	a := testAlert
	a.JournalID = "42"
	if err := n.Send(ctx, a); err != nil {
		t.Fatal(err)
	}
	got := am.next(t)
	ann, _ := got[0]["annotations"].(map[string]any)
	if ann["journal_entry"] != "42" || ann["journal_url"] != "http://drwatchd.example:8080/journal?id=42&service=fraud-scorer" {
		t.Fatalf("annotations %v: want journal_entry 42 and its journal_url", ann)
	}
	// Without an external URL: the entry's ID only.
	if got := JournalURL("http://x/", "", "7"); got != "http://x/journal?id=7" {
		t.Fatalf("JournalURL = %s", got)
	}
}
