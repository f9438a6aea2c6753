// Package config loads Vigil's YAML files strictly and turns decoding and
// validation problems into errors that name the file, the line and the
// field as it is written in the file, so an installer at a gate with a
// laptop can fix a typo without reading Go.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// FieldError is one problem with one field. Field is a dotted path as it is
// written in the file, e.g. "cameras[1].url".
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Validator is implemented by a config root; it reports every problem it
// finds, not just the first.
type Validator interface {
	Validate() []FieldError
}

// Error is a failed load: every problem, each with its file and line.
type Error struct {
	File     string
	Problems []Problem
}

// Problem is a FieldError placed in the file (Line 0 if the field is absent).
type Problem struct {
	Line int
	FieldError
}

// Error prints one problem a line, as "file:line: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.FieldError.Error())
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.FieldError.Error())
		}
	}
	return b.String()
}

// Load reads path into v (a pointer to a config struct with yaml tags),
// rejecting unknown fields, then runs v's Validate if it has one.
func Load(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, v)
}

// Parse is Load for bytes already read; name is used in messages.
func Parse(name string, data []byte, v any) error {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return &Error{File: name, Problems: []Problem{syntaxProblem(data, err)}}
	}
	if err := yaml.UnmarshalWithOptions(data, v, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return &Error{File: name, Problems: []Problem{decodeProblem(file, v, err)}}
	}
	val, ok := v.(Validator)
	if !ok {
		return nil
	}
	return Place(name, data, val.Validate())
}

// Place turns field errors about the file name (whose text is data) into
// an *Error with each problem's line, or nil if there are none. Callers
// use it for problems found after Parse, e.g. a token file that cannot be
// read.
func Place(name string, data []byte, fes []FieldError) error {
	if len(fes) == 0 {
		return nil
	}
	file, _ := parser.ParseBytes(data, 0)
	out := &Error{File: name}
	for _, fe := range fes {
		out.Problems = append(out.Problems, Problem{Line: lineOf(file, fe.Field), FieldError: fe})
	}
	return out
}

// PlaceFile is Place for a file on disk; if it cannot be read the errors
// are placed without lines.
func PlaceFile(path string, fes []FieldError) error {
	data, _ := os.ReadFile(path)
	return Place(path, data, fes)
}

// lineOf finds the line of a dotted field path, falling back to its
// closest existing parent so a missing field still points near its place.
func lineOf(file *ast.File, field string) int {
	if file == nil {
		return 0
	}
	for f := field; f != ""; f = parent(f) {
		p, err := yaml.PathString("$." + f)
		if err != nil {
			continue
		}
		n, err := p.FilterFile(file)
		if err != nil || n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
			continue
		}
		return n.GetToken().Position.Line
	}
	return 0
}

type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

func parent(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i <= 0 {
		return ""
	}
	return f[:i]
}

// errorsAs is errors.As for go-yaml's error types, which are pointers.
func errorsAs[T any](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
