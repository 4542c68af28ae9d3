package yamlx

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// seconds is a scalar type that decodes itself, as config.Duration does.
type seconds int

func (s *seconds) UnmarshalYAML(n *yaml.Node) error {
	var v int
	if _, err := fmt.Sscanf(n.Value, "%ds", &v); err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%q is not a number of seconds such as \"5s\"", n.Value)
	}
	*s = seconds(v)
	return nil
}

type region struct {
	Name   string   `yaml:"name"`
	Weight int      `yaml:"weight"`
	Ratio  *float64 `yaml:"ratio"`
}

type doc struct {
	Name    string            `yaml:"name"`
	Enabled bool              `yaml:"enabled"`
	Wait    seconds           `yaml:"wait"`
	Regions []region          `yaml:"regions"`
	Labels  map[string]string `yaml:"labels"`
	Extra   *region           `yaml:"extra"`
}

func decode(t *testing.T, src string, d *Decoder, out any) {
	t.Helper()
	root, err := ParseDocument([]byte(src))
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	if root != nil {
		d.Decode(root, out, "")
	}
}

func TestDecodeValid(t *testing.T) {
	d := &Decoder{Defaults: func(t reflect.Type) (reflect.Value, bool) {
		if t == reflect.TypeOf(region{}) {
			return reflect.ValueOf(region{Weight: 7}), true
		}
		return reflect.Value{}, false
	}}
	out := doc{Name: "default", Extra: &region{Name: "gone"}}
	decode(t, `
enabled: true
wait: 5s
regions:
  - {name: us-central1}
  - &e {name: us-east1, weight: 3, ratio: 0.5}
  - {<<: *e, name: europe-west4}
labels: {team: ml}
extra: null
`, d, &out)
	if errs := d.Errors(); len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	half := 0.5
	want := doc{Name: "default", Enabled: true, Wait: 5,
		Regions: []region{{Name: "us-central1", Weight: 7}, {Name: "us-east1", Weight: 3, Ratio: &half}, {Name: "europe-west4", Weight: 3, Ratio: &half}},
		Labels:  map[string]string{"team": "ml"}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("decoded\n %+v\nwant\n %+v", out, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, src string
		max       int
		want      []string // "path: message fragment", one per error, in order
	}{
		{"unknown key with a suggestion", "nmae: x\n", 0, []string{`nmae: unknown field; did you mean "name"? (line 1)`}},
		{"unknown key far from any", "zzzzzzzz: x\n", 0, []string{`zzzzzzzz: unknown field; known fields here: enabled, extra, labels, name, regions, wait`}},
		{"unknown key deep down", "regions: [{name: a, wieght: 2}]\n", 0, []string{`regions[0].wieght: unknown field; did you mean "weight"?`}},
		{"key twice in a struct", "name: a\nname: b\n", 0, []string{`name: defined twice (first at line 1); keep one (line 2)`}},
		{"key twice in a map", "labels: {a: 1, a: 2}\n", 0, []string{`labels.a: defined twice (first at line 1)`}},
		{"YAML 1.1 boolean", "enabled: yes\n", 0, []string{`enabled: expected a boolean (true or false), got "yes"`}},
		{"quoted boolean", "enabled: \"true\"\n", 0, []string{`enabled: expected a boolean (true or false), got "true"`}},
		{"fraction for an integer", "regions: [{weight: 2.5}]\n", 0, []string{`regions[0].weight: expected an integer, got 2.5 (a fraction)`}},
		{"NaN", "regions: [{ratio: .nan}]\n", 0, []string{`regions[0].ratio: expected a finite number, got .nan`}},
		{"infinity", "regions: [{ratio: -.inf}]\n", 0, []string{`regions[0].ratio: expected a finite number, got -.inf`}},
		{"a list for a scalar", "name: [a]\n", 0, []string{`name: expected a string, got a list`}},
		{"a scalar for a list", "regions: a\n", 0, []string{`regions: expected a list, got "a"`}},
		{"a scalar for a struct", "regions: [a]\n", 0, []string{`regions[0]: expected a mapping of keys to values, got "a"`}},
		{"an unmarshaler's error", "wait: soon\n", 0, []string{`wait: "soon" is not a number of seconds such as "5s" (line 1)`}},
		{"an alias that contains itself", "regions: [&r {<<: *r, name: a}]\n", 0, []string{`regions[0]: alias *r refers to a value that contains it`}},
		{"a merge of a scalar", "regions: [{<<: 3}]\n", 0, []string{`regions[0]: a merge key (<<) needs a mapping or a list of mappings`}},
		{"too many items", "regions: [{}, {}, {}]\n", 2, []string{`regions: at most 2 entries, got 3`}},
		{"every problem, not the first", "nmae: x\nenabled: maybe\nregions: [{wieght: 1}]\n", 0,
			[]string{`nmae: unknown field`, `enabled: expected a boolean`, `regions[0].wieght: unknown field`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &Decoder{MaxItems: c.max}
			var out doc
			decode(t, c.src, d, &out)
			errs := d.Errors()
			if len(errs) != len(c.want) {
				t.Fatalf("%d errors, want %d: %v", len(errs), len(c.want), errs)
			}
			for i, w := range c.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d is %q, want it to contain %q", i, errs[i].Error(), w)
				}
				if !d.Covers(errs[i].Path) {
					t.Errorf("Covers(%q) false after an error there", errs[i].Path)
				}
			}
		})
	}
}

// A document that multiplies its nodes through aliases is refused with one error, not expanded.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("regions:\n  - &r0 {name: a}\n")
	for k := 1; k < 7; k++ {
		fmt.Fprintf(&b, "  - &r%d {<<: [%s]}\n", k, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*r%d,", k-1), 10), ","))
	}
	d := &Decoder{}
	var out doc
	decode(t, b.String(), d, &out)
	if !d.TooMany() || len(d.Errors()) != 1 || !strings.Contains(d.Errors()[0].Msg, "too many nodes through aliases") {
		t.Fatalf("TooMany %v, errors %v", d.TooMany(), d.Errors())
	}
}

func TestCovers(t *testing.T) {
	d := &Decoder{}
	d.Fail("services[1].regions", nil, "bad")
	for path, want := range map[string]bool{
		"services[1].regions": true, "services[1].regions[0].name": true, "services[1].regions.x": true,
		"services[1].regionsx": false, "services[1]": false, "services[10].regions": false,
	} {
		if got := d.Covers(path); got != want {
			t.Errorf("Covers(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestParseDocument(t *testing.T) {
	if root, err := ParseDocument([]byte("# nothing\n")); root != nil || err != nil {
		t.Errorf("empty document: %v, %v; want nil, nil", root, err)
	}
	_, err := ParseDocument([]byte("a: 1\n---\nb: 2\n"))
	var multi *MultiDocError
	if !errors.As(err, &multi) || multi.Line != 2 {
		t.Errorf("two documents: %v; want a *MultiDocError at line 2 (the ---)", err)
	}
	_, err = ParseDocument([]byte("a: [1\n"))
	var syn *SyntaxError
	if !errors.As(err, &syn) || !strings.Contains(err.Error(), "yaml:") {
		t.Errorf("bad YAML: %v; want a *SyntaxError with yaml's text", err)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"failover", "failback", "cooldown"}
	for key, want := range map[string]string{
		"failovr":  `; did you mean "failover"?`,
		"FailBack": `; did you mean "failback"?`,
		"xyz":      "; known fields here: cooldown, failback, failover",
	} {
		if got := Suggest(key, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", key, got, want)
		}
	}
}
