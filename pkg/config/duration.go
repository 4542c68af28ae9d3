package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drwatchd/drwatchd/pkg/yamlx"
)

// UnmarshalYAML parses a scalar such as "30s" or "1h30m". It deliberately does not call
// node.Decode: a custom unmarshaller that does loses the decoder's KnownFields setting
// (go-yaml issue 460). A bare number is refused, since "10" could mean seconds or nanoseconds.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"10s\", got %s", yamlx.KindName(node))
	}
	if node.ShortTag() == "!!null" {
		*d = 0
		return nil
	}
	v, err := ParseDuration(node.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses s with time.ParseDuration, with the error message the configuration
// uses: units are required.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		return 0, fmt.Errorf("%q is not a duration (want e.g. \"10s\")", s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want e.g. \"10s\", \"1m30s\", \"2h\")", s)
	}
	return Duration(v), nil
}

// MarshalYAML writes the duration in its string form, e.g. "1m30s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration in its string form, e.g. "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads the string form written by MarshalJSON.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a JSON string such as \"10s\": %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// String formats the duration like time.Duration but without trailing zero units:
// "5m" rather than "5m0s", "1h" rather than "1h0m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
