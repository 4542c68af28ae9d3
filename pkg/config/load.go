package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/drwatchd/drwatchd/pkg/yamlx"
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
	root, err := yamlx.ParseDocument(data)
	var multi *yamlx.MultiDocError
	switch {
	case errors.As(err, &multi):
		return nil, &FieldError{Msg: fmt.Sprintf("the file holds more than one YAML document (a second one starts at line %d); put the whole configuration in one document", multi.Line)}
	case err != nil:
		return nil, fmt.Errorf("parse config YAML: %w", err)
	}

	d := &decoder{lookupEnv: o.lookupEnv, expanded: map[*yaml.Node]bool{}}
	d.yd.Defaults = newDefault
	d.yd.Skip = map[*yaml.Node]bool{}
	cfg := defaults(o)
	if root != nil {
		d.expand(root, "", false)
		d.yd.Decode(root, cfg, "")
	}
	if d.yd.TooMany() {
		// Nothing else is worth reporting about a document built to explode.
		ye := d.yd.Errors()
		return nil, &FieldError{Path: ye[len(ye)-1].Path, Msg: ye[len(ye)-1].Msg}
	}
	cfg.ApplyDefaults(opts...)

	ye := d.yd.Errors()
	errs := make([]error, 0, len(ye))
	for _, e := range ye {
		errs = append(errs, &FieldError{Path: e.Path, Msg: e.Msg})
	}
	for _, e := range cfg.validate() {
		if !d.yd.Covers(e.Path) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// decoder is the shared strict decoder (pkg/yamlx) with config's ${VAR} expansion before it.
type decoder struct {
	yd        yamlx.Decoder
	lookupEnv func(string) (string, bool)
	// expanded marks scalars already expanded (an anchored node is reached once per alias).
	expanded map[*yaml.Node]bool
}

// ---- ${VAR} expansion ----

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand walks the node tree and expands ${VAR} in string scalar values (never in keys).
func (d *decoder) expand(n *yaml.Node, path string, isKey bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			d.expand(v, yamlx.Join(path, k.Value), false)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expand(c, yamlx.Index(path, i), false)
		}
	case yaml.ScalarNode:
		if isKey || d.expanded[n] || n.ShortTag() != "!!str" || !strings.Contains(n.Value, "$") {
			return
		}
		d.expanded[n] = true
		v, err := expandString(n.Value, d.lookupEnv)
		if err != nil {
			d.yd.Fail(path, n, "%v", err)
			d.yd.Skip[n] = true
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

// ---- defaults for the decoder ----

// newDefault returns t's defaults for the decoder (ok false: the zero value).
func newDefault(t reflect.Type) (reflect.Value, bool) {
	switch t {
	case reflect.TypeOf(Service{}):
		return reflect.ValueOf(DefaultService()), true
	case reflect.TypeOf(Region{}):
		return reflect.ValueOf(DefaultRegion()), true
	case reflect.TypeOf(Alertmanager{}):
		return reflect.ValueOf(DefaultAlertmanager()), true
	case reflect.TypeOf(Probe{}):
		return reflect.ValueOf(DefaultProbe()), true
	}
	return reflect.Value{}, false
}
