package config_test

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// FuzzParse checks that Parse never panics, is deterministic, and that a config it accepts
// validates (the same way every time). Where the input has no ${VAR}, whatever Parse accepts
// yaml.v3's own strict decoder (KnownFields) must accept too: Parse's path-aware decoder may
// not let through a key that the reference decoder rejects.
func FuzzParse(f *testing.F) {
	for _, p := range []string{examplePath, "testdata/five-mistakes.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(config.DemoYAML)
	f.Add([]byte(minimalYAML))
	f.Add([]byte("services: [{regions: [&r {<<: *r}]}]"))

	lookup := env("DRWATCHD_SIM_PROBE_BASE", "http://127.0.0.1:1", "HOSTNAME", "fuzz")
	f.Fuzz(func(t *testing.T, data []byte) {
		c1, err1 := config.Parse(data, config.WithLookupEnv(lookup))
		c2, err2 := config.Parse(data, config.WithLookupEnv(lookup))
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err1, err2)
		}
		if err1 != nil {
			if c1 != nil {
				t.Fatal("Parse returned a config with an error")
			}
			return
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatal("Parse returned different configs for the same input")
		}
		v1, v2 := c1.Validate(), c1.Validate()
		if v1 != nil || v2 != nil {
			t.Fatalf("a parsed config does not validate: %v / %v", v1, v2)
		}
		if !bytes.Contains(data, []byte("$")) {
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			var ref config.Config
			if err := dec.Decode(&ref); err != nil {
				t.Fatalf("Parse accepted what yaml.v3's strict decoder rejects: %v", err)
			}
		}
	})
}
