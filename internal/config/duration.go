package config

import (
	"fmt"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Duration is a time.Duration written as "5s", "1m30s" in YAML. It exists
// because go-yaml reports a bad time.Duration without its line.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses the node and, on failure, reports its line and path.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	fail := func(msg string) error {
		return &positioned{line: line(n.GetToken()), path: n.GetPath(), msg: msg}
	}
	var s string
	switch n := n.(type) {
	case *ast.StringNode:
		s = n.Value
	case ast.ScalarNode:
		s = n.String()
	default:
		return fail("want a duration (e.g. 500ms, 5s, 2m), got " + describeValue(n))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fail(fmt.Sprintf("%q is not a duration (want e.g. 500ms, 5s, 2m)", s))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as text.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// positioned is an error found while decoding a node whose place we know.
type positioned struct {
	line int
	path string
	msg  string
}

func (p *positioned) Error() string { return p.msg }
