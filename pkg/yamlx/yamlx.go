// Package yamlx is drwatchd's one strict YAML decoder, shared by the configuration (pkg/config)
// and the scenario files (pkg/scenario). It decodes a yaml.v3 node tree onto Go values with
// yaml tags and, instead of stopping at the first problem, collects every one with its field
// path ("services[1].regions[0].role"), its line and, for an unknown key, the key that was
// probably meant:
//
//   - an unknown key anywhere is an error ("did you mean ...?", or the known keys listed);
//   - a key given twice in one mapping is an error (yaml.v3 keeps the last silently);
//   - aliases are followed, but a document that expands to more than MaxAliasNodes nodes through
//     them (a "billion laughs") or an alias that contains itself is refused;
//   - merge keys (<<: *anchor) work, the mapping's own keys winning;
//   - scalars are typed strictly: 4.5 is not an integer, NaN and infinities are not numbers,
//     and a boolean is true or false (not YAML 1.1's yes, on, y).
//
// A field whose type implements yaml.Unmarshaler decodes itself from the (alias-resolved) node;
// such a type must not call node.Decode on a mapping, which would drop the strictness (go-yaml
// issue 460). It performs no I/O and imports only the standard library and yaml.v3.
package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxAliasNodes bounds the nodes decoded through aliases (a "billion laughs" document).
const MaxAliasNodes = 100_000

// Error is one problem of a document, at a field path such as "faults[2].kind" ("" for the
// document itself).
type Error struct {
	Path string
	Msg  string
}

func (e Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// SyntaxError is a document that is not YAML, from ParseDocument; its text is yaml.v3's.
type SyntaxError struct{ Err error }

func (e *SyntaxError) Error() string { return e.Err.Error() }
func (e *SyntaxError) Unwrap() error { return e.Err }

// MultiDocError is returned by ParseDocument when the data holds a second YAML document.
type MultiDocError struct {
	// Line is where the second document starts.
	Line int
}

func (e *MultiDocError) Error() string {
	return fmt.Sprintf("more than one YAML document (a second one starts at line %d)", e.Line)
}

// ParseDocument parses data as exactly one YAML document and returns its root node (nil for an
// empty document). A syntax error is a *SyntaxError; a second document is a *MultiDocError.
func ParseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, &SyntaxError{Err: err}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &MultiDocError{Line: extra.Line}
	case !errors.Is(err, io.EOF):
		return nil, &SyntaxError{Err: err}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// Decoder decodes node trees onto Go values and collects the problems. The zero value is ready
// to use; set the options before the first Decode.
type Decoder struct {
	// Defaults, when set, returns a value of t holding its defaults, or ok false for the zero
	// value: every list element, map value and pointer target is decoded onto it.
	Defaults func(t reflect.Type) (v reflect.Value, ok bool)
	// Skip marks nodes not to decode (a scalar whose preprocessing failed and was reported).
	Skip map[*yaml.Node]bool
	// MaxItems, when > 0, bounds every list's length: a longer list is an error, not decoded.
	MaxItems int

	errs []Error
	// bad holds paths whose value could not be used; problems found later at or below them
	// (by the caller's validation) are consequences, and Covers says so.
	bad []string
	// active holds the anchors being decoded, to catch an alias that contains itself.
	active     map[*yaml.Node]bool
	aliasDepth int
	aliasNodes int
	tooMany    bool
}

// Fail records a problem at path; n, when not nil, adds its line to the message. The path is
// marked bad (see Covers).
func (d *Decoder) Fail(path string, n *yaml.Node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg += fmt.Sprintf(" (line %d)", n.Line)
	}
	d.errs = append(d.errs, Error{Path: path, Msg: msg})
	d.bad = append(d.bad, path)
}

// Errors returns the problems recorded so far, in the order found.
func (d *Decoder) Errors() []Error { return d.errs }

// TooMany reports whether the document was refused for expanding to too many nodes through
// aliases: nothing else about such a document is worth reporting (its last error says why).
func (d *Decoder) TooMany() bool { return d.tooMany }

// Covers reports whether path is at or below a path that already failed to decode, so that a
// validation error there is a consequence, not worth reporting twice.
func (d *Decoder) Covers(path string) bool {
	for _, b := range d.bad {
		if b == "" || path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return true
		}
	}
	return false
}

// Join returns key's path under path: "a.b", or "b" at the root.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index returns the path of a list element: "a[3]".
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Decode decodes n onto out, a non-nil pointer whose target may already hold defaults (a key
// that is absent keeps its value; null means "not set": a pointer becomes nil, anything else
// keeps its value). path is n's field path ("" for the document root).
func (d *Decoder) Decode(n *yaml.Node, out any, path string) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic(fmt.Sprintf("yamlx: Decode needs a non-nil pointer, got %T", out))
	}
	if d.active == nil {
		d.active = map[*yaml.Node]bool{}
	}
	d.decode(n, v.Elem(), path)
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func (d *Decoder) newDefault(t reflect.Type) reflect.Value {
	if d.Defaults != nil {
		if v, ok := d.Defaults(t); ok {
			c := reflect.New(t).Elem()
			c.Set(v)
			return c
		}
	}
	return reflect.New(t).Elem()
}

func (d *Decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.tooMany {
		return
	}
	if d.aliasDepth > 0 {
		d.aliasNodes++
		if d.aliasNodes > MaxAliasNodes {
			d.tooMany = true
			d.Fail(path, n, "the document expands to too many nodes through aliases (more than %d); use fewer aliases", MaxAliasNodes)
			return
		}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || d.active[n.Alias] {
			d.Fail(path, n, "alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.active[n.Alias] = true
		d.aliasDepth++
		d.decode(n.Alias, v, path)
		d.aliasDepth--
		delete(d.active, n.Alias)
		return
	}
	if d.Skip[n] {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		if v.Kind() == reflect.Pointer {
			v.Set(reflect.Zero(v.Type()))
		}
		return
	}
	if v.Kind() != reflect.Pointer && v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.Fail(path, n, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := d.newDefault(v.Type().Elem())
		d.decode(n, elem, path)
		v.Set(elem.Addr())
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.Fail(path, n, "expected a list, got %s", KindName(n))
			return
		}
		if d.MaxItems > 0 && len(n.Content) > d.MaxItems {
			d.Fail(path, n, "at most %d entries, got %d", d.MaxItems, len(n.Content))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			elem := d.newDefault(v.Type().Elem())
			d.decode(c, elem, Index(path, i))
			s.Index(i).Set(elem)
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *Decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.Fail(path, n, "expected a mapping, got %s", KindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.Fail(path, k, "expected a string key, got %s", KindName(k))
			continue
		}
		p := Join(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.Fail(p, k, "defined twice (first at line %d); keep one", line)
			continue
		}
		seen[k.Value] = k.Line
		elem := d.newDefault(v.Type().Elem())
		d.decode(val, elem, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

func (d *Decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
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
		d.Fail(path, n, "expected %s, got %s", want, KindName(n))
		return
	}
	switch {
	case want == "an integer" && n.ShortTag() == "!!float":
		// yaml.v3 would truncate 4.5 to 4 without a word: a count is whole or it is a mistake.
		d.Fail(path, n, "expected an integer, got %s (a fraction); want a whole number", n.Value)
		return
	case v.Kind() == reflect.Bool && n.ShortTag() != "!!bool":
		// yaml.v3 takes YAML 1.1's yes/no/on/off/y/n into a bool: "n" is a region name typo
		// more often than a "no".
		d.Fail(path, n, "expected %s, got %q", want, n.Value)
		return
	}
	tmp := reflect.New(v.Type())
	if err := n.Decode(tmp.Interface()); err != nil {
		d.Fail(path, n, "expected %s, got %q", want, n.Value)
		return
	}
	if f := tmp.Elem(); (f.Kind() == reflect.Float32 || f.Kind() == reflect.Float64) && (math.IsNaN(f.Float()) || math.IsInf(f.Float(), 0)) {
		d.Fail(path, n, "expected a finite number, got %s", n.Value)
		return
	}
	v.Set(tmp.Elem())
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.Fail(path, n, "expected a mapping of keys to values, got %s", KindName(n))
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
			d.Fail(path, k, "expected a field name, got %s", KindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			continue
		}
		p := Join(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.Fail(p, k, "defined twice (first at line %d); keep one", line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.Fail(p, k, "unknown field%s", Suggest(k.Value, names))
			continue
		}
		d.decode(val, v.Field(idx), p)
	}
}

func (d *Decoder) merge(n *yaml.Node, v reflect.Value, path string) {
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
		d.Fail(path, n, "a merge key (<<) needs a mapping or a list of mappings, got %s", KindName(n))
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

// Suggest says which of names key probably meant ("; did you mean "x"?"), or lists them all
// ("; known fields here: a, b").
func Suggest(key string, names []string) string {
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

// KindName describes a node for an error message: "a mapping", "a list", or a scalar's
// (quoted, shortened) text.
func KindName(n *yaml.Node) string {
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
