package fakemon

import (
	"fmt"
	"strings"

	monitoringpb "cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
)

// filter is a parsed Monitoring filter restricted to the supported subset: a conjunction of
// `field = "value"` or `field = one_of("a", "b")` terms.
type filter struct {
	metricType string
	terms      []term
}

// term is one equality restriction. field is the canonical selector: "metric.type",
// "resource.type", "metric.label.K", "resource.label.K" or "project" (the series' resource
// container, by ID or number: matched by the server, which knows projects' numbers).
type term struct {
	field  string
	values []string
}

type tokKind int

const (
	tokIdent tokKind = iota
	tokString
	tokEq
	tokLParen
	tokRParen
	tokComma
	tokOther
)

type token struct {
	kind tokKind
	text string // identifier, unquoted string value, or the raw operator
	pos  int
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '.' || c == '/' || c == '-' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			quote := c
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != quote; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			toks = append(toks, token{kind: tokString, text: b.String(), pos: i})
			i = j + 1
		case c == '=':
			toks = append(toks, token{kind: tokEq, text: "=", pos: i})
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen, text: "(", pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, text: ")", pos: i})
			i++
		case c == ',':
			toks = append(toks, token{kind: tokComma, text: ",", pos: i})
			i++
		case isIdentByte(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: s[i:j], pos: i})
			i = j
		default:
			// Operators such as !=, :, <, >, and NOT's '-' shorthand are outside the subset.
			j := i + 1
			for j < len(s) && strings.IndexByte("!=<>:", s[j]) >= 0 && strings.IndexByte("!<>:", c) >= 0 {
				j++
			}
			toks = append(toks, token{kind: tokOther, text: s[i:j], pos: i})
			i = j
		}
	}
	return toks, nil
}

// canonicalField maps a filter selector to its canonical form, or returns an error naming it.
func canonicalField(f string) (string, error) {
	switch f {
	case "metric.type", "resource.type", "project":
		return f, nil
	}
	for _, p := range []struct{ in, out string }{
		{"metric.labels.", "metric.label."},
		{"metric.label.", "metric.label."},
		{"resource.labels.", "resource.label."},
		{"resource.label.", "resource.label."},
	} {
		if k, ok := strings.CutPrefix(f, p.in); ok {
			if k == "" || strings.Contains(k, ".") {
				return "", fmt.Errorf("unsupported field %q", f)
			}
			return p.out + k, nil
		}
	}
	return "", fmt.Errorf("unsupported field %q", f)
}

// parseFilter parses the supported filter subset. Anything else is an error that names the
// unsupported part; nothing is silently ignored.
func parseFilter(s string) (*filter, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	f := &filter{}
	i := 0
	for i < len(toks) {
		t := toks[i]
		if t.kind == tokIdent && (t.text == "AND") {
			if i == 0 || i == len(toks)-1 {
				return nil, fmt.Errorf("dangling AND at offset %d", t.pos)
			}
			i++
			continue
		}
		if t.kind == tokIdent && (t.text == "OR" || t.text == "NOT" || t.text == "or" || t.text == "not") {
			return nil, fmt.Errorf("unsupported operator %s at offset %d (only AND is supported)", t.text, t.pos)
		}
		if t.kind != tokIdent {
			return nil, fmt.Errorf("unsupported token %q at offset %d", t.text, t.pos)
		}
		field, err := canonicalField(t.text)
		if err != nil {
			return nil, err
		}
		i++
		if i >= len(toks) {
			return nil, fmt.Errorf("missing operator after %q", t.text)
		}
		if toks[i].kind != tokEq {
			return nil, fmt.Errorf("unsupported operator %q after %q at offset %d (only = is supported)", toks[i].text, t.text, toks[i].pos)
		}
		i++
		if i >= len(toks) {
			return nil, fmt.Errorf("missing value for %q", t.text)
		}
		v := toks[i]
		var values []string
		switch {
		case v.kind == tokString:
			values = []string{v.text}
			i++
		case v.kind == tokIdent && v.text == "one_of":
			i++
			if i >= len(toks) || toks[i].kind != tokLParen {
				return nil, fmt.Errorf("one_of without '(' at offset %d", v.pos)
			}
			i++
			for {
				if i >= len(toks) || toks[i].kind != tokString {
					return nil, fmt.Errorf("one_of expects quoted strings at offset %d", v.pos)
				}
				values = append(values, toks[i].text)
				i++
				if i < len(toks) && toks[i].kind == tokComma {
					i++
					continue
				}
				if i < len(toks) && toks[i].kind == tokRParen {
					i++
					break
				}
				return nil, fmt.Errorf("unterminated one_of at offset %d", v.pos)
			}
		case v.kind == tokIdent:
			return nil, fmt.Errorf("unsupported value %q for %q (only quoted strings and one_of are supported)", v.text, t.text)
		default:
			return nil, fmt.Errorf("unsupported token %q at offset %d", v.text, v.pos)
		}
		if field == "metric.type" {
			if len(values) != 1 {
				return nil, fmt.Errorf("metric.type must name exactly one metric type")
			}
			if f.metricType != "" && f.metricType != values[0] {
				return nil, fmt.Errorf("filter names two metric types")
			}
			f.metricType = values[0]
			continue
		}
		f.terms = append(f.terms, term{field: field, values: values})
	}
	if f.metricType == "" {
		return nil, fmt.Errorf("filter must specify a metric type (metric.type = \"...\")")
	}
	return f, nil
}

// matches reports whether a series' identity satisfies the filter.
func (f *filter) matches(ts *monitoringpb.TimeSeries) bool {
	if ts.GetMetric().GetType() != f.metricType {
		return false
	}
	for _, t := range f.terms {
		if t.field == "project" {
			continue // Server.ownedBy
		}
		v, ok := fieldValue(ts, t.field)
		if !ok {
			return false
		}
		found := false
		for _, want := range t.values {
			if v == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// fieldValue returns the value of a canonical selector on a series.
func fieldValue(ts *monitoringpb.TimeSeries, field string) (string, bool) {
	switch field {
	case "metric.type":
		return ts.GetMetric().GetType(), true
	case "resource.type":
		return ts.GetResource().GetType(), true
	}
	if k, ok := strings.CutPrefix(field, "metric.label."); ok {
		v, ok := ts.GetMetric().GetLabels()[k]
		return v, ok
	}
	if k, ok := strings.CutPrefix(field, "resource.label."); ok {
		v, ok := ts.GetResource().GetLabels()[k]
		return v, ok
	}
	return "", false
}
