package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Option configures Load and Parse.
type Option func(*options)

type options struct {
	lookupEnv func(string) (string, bool)
}

// WithLookupEnv sets the environment lookup used for ${VAR} expansion and for the
// STATE_DIRECTORY and HOSTNAME defaults. The default is os.LookupEnv; nil restores it.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = f }
}

func newOptions(opts []Option) options {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.lookupEnv == nil {
		o.lookupEnv = os.LookupEnv
	}
	return o
}

// Load reads the configuration file at path; see Parse.
// A file larger than MaxConfigBytes is refused without being read whole.
func Load(path string, opts ...Option) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > MaxConfigBytes {
		return nil, &FieldError{Msg: fmt.Sprintf("config file %s is larger than %d bytes; a drwatchd config is a few kilobytes per service: check the path", path, MaxConfigBytes)}
	}
	return Parse(data, opts...)
}

// Parse expands ${VAR} and ${VAR:-default} in string values, decodes strictly onto the defaults
// (an unknown key anywhere is an error), applies the derived defaults and validates. Every
// problem found is reported, each as a *FieldError carrying its field path, joined with
// errors.Join; on error the returned config is nil. A YAML syntax error is returned alone.
func Parse(data []byte, opts ...Option) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, &FieldError{Msg: fmt.Sprintf("the configuration is %d bytes, larger than %d; a drwatchd config is a few kilobytes per service", len(data), MaxConfigBytes)}
	}
	o := newOptions(opts)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config YAML: %w", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &FieldError{Msg: fmt.Sprintf("the file holds more than one YAML document (a second one starts at line %d); put the whole configuration in one document", extra.Line)}
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("parse config YAML: %w", err)
	}

	d := &decoder{lookupEnv: o.lookupEnv, expanded: map[*yaml.Node]bool{}, unexpanded: map[*yaml.Node]bool{}, active: map[*yaml.Node]bool{}}
	cfg := defaults(o)
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		d.expand(root, "", false)
		d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	}
	if d.tooMany {
		// Nothing else is worth reporting about a document built to explode.
		return nil, d.errs[len(d.errs)-1]
	}
	cfg.ApplyDefaults(opts...)

	errs := make([]error, 0, len(d.errs))
	for _, e := range d.errs {
		errs = append(errs, e)
	}
	for _, e := range cfg.validate() {
		if !d.covers(e.Path) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// maxAliasNodes bounds the nodes decoded through aliases (a "billion laughs" document).
const maxAliasNodes = 100_000

type decoder struct {
	lookupEnv func(string) (string, bool)
	errs      []*FieldError
	// bad holds paths whose value could not be used; validation errors at or below them are
	// consequences and are not reported twice.
	bad []string
	// expanded marks scalars already expanded (an anchored node is reached once per alias).
	expanded map[*yaml.Node]bool
	// unexpanded marks scalars whose expansion failed (already reported).
	unexpanded map[*yaml.Node]bool
	// active holds the anchors being decoded, to catch an alias that contains itself.
	active     map[*yaml.Node]bool
	aliasDepth int
	aliasNodes int
	tooMany    bool
}

func (d *decoder) fail(path string, n *yaml.Node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg += fmt.Sprintf(" (line %d)", n.Line)
	}
	d.errs = append(d.errs, &FieldError{Path: path, Msg: msg})
	d.bad = append(d.bad, path)
}

func (d *decoder) covers(path string) bool {
	for _, b := range d.bad {
		if b == "" || path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return true
		}
	}
	return false
}

// ---- ${VAR} expansion ----

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand walks the node tree and expands ${VAR} in string scalar values (never in keys).
func (d *decoder) expand(n *yaml.Node, path string, isKey bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			d.expand(v, joinPath(path, k.Value), false)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expand(c, fmt.Sprintf("%s[%d]", path, i), false)
		}
	case yaml.ScalarNode:
		if isKey || d.expanded[n] || n.ShortTag() != "!!str" || !strings.Contains(n.Value, "$") {
			return
		}
		d.expanded[n] = true
		v, err := expandString(n.Value, d.lookupEnv)
		if err != nil {
			d.fail(path, n, "%v", err)
			d.unexpanded[n] = true
			return
		}
		n.Value = v
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0 {
			// A plain scalar is typed by its expanded text, so port: ${PORT} can fill an int.
			n.Tag = ""
		}
	}
	// Aliases are not followed: their anchor is expanded where it is defined.
}

// expandString expands ${NAME} and ${NAME:-default} ("$${" is a literal "${"). An unset
// variable without a default is an error; a set but empty one expands to its default if any.
func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated \"${\" in %q; write ${NAME} or ${NAME:-default} (or $${ for a literal ${)", s[i:])
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !envName.MatchString(name) {
			return "", fmt.Errorf("invalid variable reference \"${%s}\"; want ${NAME} or ${NAME:-default} with NAME like [A-Za-z_][A-Za-z0-9_]*", expr)
		}
		val, ok := lookup(name)
		switch {
		case ok && val != "":
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		case ok:
			// Set but empty, no default: empty.
		default:
			return "", fmt.Errorf("environment variable %s is not set and has no default; set it or write ${%s:-default}", name, name)
		}
	}
}

// ---- decoding onto defaults, with paths ----

var durationType = reflect.TypeOf(Duration(0))

// newDefault returns an addressable value of type t holding t's defaults.
func newDefault(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t {
	case reflect.TypeOf(Service{}):
		v.Set(reflect.ValueOf(DefaultService()))
	case reflect.TypeOf(Region{}):
		v.Set(reflect.ValueOf(DefaultRegion()))
	case reflect.TypeOf(Alertmanager{}):
		v.Set(reflect.ValueOf(DefaultAlertmanager()))
	case reflect.TypeOf(Probe{}):
		v.Set(reflect.ValueOf(DefaultProbe()))
	}
	return v
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode decodes n onto v (which holds defaults). Every yaml mapping is checked against the
// struct's yaml tags, so an unknown key is reported with its full path wherever it is.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.aliasDepth > 0 {
		d.aliasNodes++
		if d.aliasNodes > maxAliasNodes {
			if !d.tooMany {
				d.tooMany = true
				d.fail(path, n, "the document expands to too many nodes through aliases (more than %d); use fewer aliases", maxAliasNodes)
			}
			return
		}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || d.active[n.Alias] {
			d.fail(path, n, "alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.active[n.Alias] = true
		d.aliasDepth++
		d.decode(n.Alias, v, path)
		d.aliasDepth--
		delete(d.active, n.Alias)
		return
	}
	if d.unexpanded[n] {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// null means "not set": a pointer becomes nil, anything else keeps its default.
		if v.Kind() == reflect.Pointer {
			v.Set(reflect.Zero(v.Type()))
		}
		return
	}
	if v.Type() == durationType {
		var dur Duration
		if err := dur.UnmarshalYAML(n); err != nil {
			d.fail(path, n, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := newDefault(v.Type().Elem())
		d.decode(n, elem, path)
		v.Set(elem.Addr())
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			elem := newDefault(v.Type().Elem())
			d.decode(c, elem, fmt.Sprintf("%s[%d]", path, i))
			s.Index(i).Set(elem)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.fail(path, k, "expected a string key, got %s", kindName(k))
				continue
			}
			elem := newDefault(v.Type().Elem())
			d.decode(val, elem, joinPath(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
		v.Set(m)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	want := "a string"
	switch v.Kind() {
	case reflect.Bool:
		want = "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n, "expected %s, got %s", want, kindName(n))
		return
	}
	if want == "an integer" && n.ShortTag() == "!!float" {
		// yaml.v3 would truncate 4.5 to 4 without a word: a count is whole or it is a mistake.
		d.fail(path, n, "expected an integer, got %s (a fraction); want a whole number", n.Value)
		return
	}
	tmp := reflect.New(v.Type())
	if err := n.Decode(tmp.Interface()); err != nil {
		d.fail(path, n, "expected %s, got %q", want, n.Value)
		return
	}
	v.Set(tmp.Elem())
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "expected a mapping of keys to values, got %s", kindName(n))
		return
	}
	fields, names := structFields(v.Type())
	// Merge keys (<<: *anchor) first, so the mapping's own keys win whatever their order.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k, "expected a field name, got %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			continue
		}
		p := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(p, k, "defined twice (first at line %d); keep one", line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(p, k, "unknown field%s", suggest(k.Value, names))
			continue
		}
		d.decode(val, v.Field(idx), p)
	}
}

func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	target := n
	if target.Kind == yaml.AliasNode && target.Alias != nil {
		target = target.Alias
	}
	switch target.Kind {
	case yaml.MappingNode:
		d.decode(n, v, path)
	case yaml.SequenceNode:
		// Earlier entries take precedence, as in YAML's merge key type.
		for i := len(target.Content) - 1; i >= 0; i-- {
			d.merge(target.Content[i], v, path)
		}
	default:
		d.fail(path, n, "a merge key (<<) needs a mapping or a list of mappings, got %s", kindName(n))
	}
}

// structFields maps yaml key -> field index, and lists the keys in declaration order.
func structFields(t reflect.Type) (map[string]int, []string) {
	fields := make(map[string]int, t.NumField())
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	return fields, names
}

// suggest says which known key was probably meant, or lists them all.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if dist := editDistance(strings.ToLower(key), n); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return "; known fields here: " + strings.Join(sorted, ", ")
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%q", v)
	}
	return "nothing"
}
