package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONUsesCloudLoggingFieldNames(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("region unhealthy")
	log.Debug("dropped at info")
	var entry map[string]any
	if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
		t.Fatalf("one JSON line expected, got %q: %v", buf.String(), err)
	}
	if entry["severity"] != "WARNING" || entry["message"] != "region unhealthy" || entry["time"] == nil {
		t.Fatalf("entry = %v", entry)
	}
}

func TestBadLevelAndFormat(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "loud", "json"); err == nil || !strings.Contains(err.Error(), "log level") {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(&bytes.Buffer{}, "info", "xml"); err == nil || !strings.Contains(err.Error(), "log format") {
		t.Fatalf("err = %v", err)
	}
}
