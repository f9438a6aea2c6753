// Package config loads Vigil's YAML files strictly and turns validation
// problems into errors that name the file, the line and the field, so an
// installer at a gate with a laptop can fix a typo without reading Go.
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

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

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
	if err := yaml.UnmarshalWithOptions(data, v, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		p := syntaxProblem(err)
		if p.Field == "(value)" {
			file, _ := parser.ParseBytes(data, 0)
			p.Field = fieldAtLine(file, p.Line)
		}
		return &Error{File: name, Problems: []Problem{p}}
	}
	val, ok := v.(Validator)
	if !ok {
		return nil
	}
	fes := val.Validate()
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

// syntaxProblem extracts the line and a one-line message from a go-yaml
// error, whose default text is a multi-line source excerpt.
func syntaxProblem(err error) Problem {
	var pe *positioned
	if errors.As(err, &pe) {
		return Problem{Line: pe.line, FieldError: FieldError{Field: "(value)", Msg: pe.msg}}
	}
	var se yaml.Error
	if errors.As(err, &se) {
		if tok := se.GetToken(); tok != nil && tok.Position != nil {
			return Problem{Line: tok.Position.Line, FieldError: FieldError{Field: fieldOfToken(tok.Value), Msg: se.GetMessage()}}
		}
		return Problem{FieldError: FieldError{Field: "(file)", Msg: se.GetMessage()}}
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	return Problem{FieldError: FieldError{Field: "(file)", Msg: first}}
}

func fieldOfToken(v string) string {
	if v == "" {
		return "(file)"
	}
	return v
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

// fieldAtLine names the mapping value that starts on line, as a dotted path.
func fieldAtLine(file *ast.File, line int) string {
	found := "(value)"
	if file == nil {
		return found
	}
	for _, doc := range file.Docs {
		ast.Walk(visitFunc(func(n ast.Node) bool {
			mv, ok := n.(*ast.MappingValueNode)
			if ok && mv.Value != nil && mv.Value.GetToken() != nil && mv.Value.GetToken().Position.Line == line {
				found = strings.TrimPrefix(mv.Value.GetPath(), "$.")
			}
			return true
		}), doc)
	}
	return found
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
