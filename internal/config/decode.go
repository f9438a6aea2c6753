package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// decodeProblem turns go-yaml's decoding error, which names Go types and
// reprints the source, into one line naming the YAML path and the type the
// field wants. file is the parsed document, v the value decoded into.
func decodeProblem(file *ast.File, v any, err error) Problem {
	idx := indexFile(file)
	if pe, ok := errorsAs[*positioned](err); ok {
		return Problem{Line: pe.line, FieldError: FieldError{Field: trimPath(pe.path), Msg: pe.msg}}
	}
	if e, ok := errorsAs[*yaml.UnknownFieldError](err); ok {
		key := strings.TrimSuffix(strings.TrimPrefix(e.Message, `unknown field "`), `"`)
		line, path := idx.key(e.Token)
		if path == "" {
			path = key
		}
		msg := "unknown field"
		if s := suggest(key, fieldsAt(reflect.TypeOf(v), parent(path))); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return Problem{Line: line, FieldError: FieldError{Field: path, Msg: msg}}
	}
	if e, ok := errorsAs[*yaml.DuplicateKeyError](err); ok {
		line, path := idx.key(e.Token)
		return Problem{Line: line, FieldError: FieldError{Field: path, Msg: "appears twice in the same mapping"}}
	}
	if e, ok := errorsAs[*yaml.TypeError](err); ok {
		line, path, got := idx.value(e.Token)
		return Problem{Line: line, FieldError: FieldError{Field: path, Msg: "want " + describeType(e.DstType) + ", got " + got}}
	}
	if e, ok := errorsAs[*yaml.OverflowError](err); ok {
		line, path, got := idx.value(e.Token)
		return Problem{Line: line, FieldError: FieldError{Field: path, Msg: "want " + describeType(e.DstType) + " small enough for it, got " + got}}
	}
	if e, ok := errorsAs[*yaml.UnexpectedNodeTypeError](err); ok {
		line, path, got := idx.value(e.Token)
		return Problem{Line: line, FieldError: FieldError{Field: path, Msg: "want " + describeNode(e.Expected) + ", got " + got}}
	}
	if e, ok := errorsAs[yaml.Error](err); ok {
		line, path, _ := idx.value(e.GetToken())
		return Problem{Line: line, FieldError: FieldError{Field: path, Msg: oneLine(e.GetMessage())}}
	}
	return Problem{FieldError: FieldError{Msg: oneLine(err.Error())}}
}

// fileIndex finds the YAML path of a token the decoder reports, by its
// position (the decoder parses the text again, so tokens are not shared).
type fileIndex struct {
	values map[[2]int]ast.Node // first (outermost) node starting there
	keys   map[[2]int]string   // a mapping key's position → the path of its value
}

func indexFile(file *ast.File) fileIndex {
	idx := fileIndex{values: map[[2]int]ast.Node{}, keys: map[[2]int]string{}}
	if file == nil {
		return idx
	}
	for _, doc := range file.Docs {
		ast.Walk(visitFunc(func(n ast.Node) bool {
			if mv, ok := n.(*ast.MappingValueNode); ok {
				if p := pos(mv.Key.GetToken()); p != [2]int{} && mv.Value != nil {
					idx.keys[p] = mv.Value.GetPath()
				}
				return true
			}
			if p := pos(n.GetToken()); p != [2]int{} {
				if _, seen := idx.values[p]; !seen {
					idx.values[p] = n
				}
			}
			return true
		}), doc)
	}
	return idx
}

func pos(t *token.Token) [2]int {
	if t == nil || t.Position == nil {
		return [2]int{}
	}
	return [2]int{t.Position.Line, t.Position.Column}
}

func line(t *token.Token) int {
	if t == nil || t.Position == nil {
		return 0
	}
	return t.Position.Line
}

// key returns the line and path of the mapping key at t.
func (x fileIndex) key(t *token.Token) (int, string) {
	return line(t), trimPath(x.keys[pos(t)])
}

// value returns the line, path and a short description of the value at t.
func (x fileIndex) value(t *token.Token) (int, string, string) {
	n, ok := x.values[pos(t)]
	if !ok {
		got := "something else"
		if t != nil {
			got = quote(t.Value)
		}
		return line(t), trimPath(x.keys[pos(t)]), got
	}
	return line(t), trimPath(n.GetPath()), describeValue(n)
}

func trimPath(p string) string {
	p = strings.TrimPrefix(p, "$")
	return strings.TrimPrefix(p, ".")
}

// describeValue says what the file holds, briefly: a quoted scalar or
// "a list" / "a mapping".
func describeValue(n ast.Node) string {
	switch n := n.(type) {
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.NullNode:
		return "nothing"
	case *ast.StringNode:
		return quote(n.Value)
	case ast.ScalarNode:
		return quote(fmt.Sprint(n.GetValue()))
	}
	return quote(n.String())
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// describeType names a Go type as an installer would: what to write.
func describeType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t.PkgPath() == "time" && t.Name() == "Duration" {
			return "a duration (e.g. 500ms, 5s, 2m)"
		}
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "text"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping (key: value lines)"
	}
	return t.Kind().String()
}

func describeNode(t ast.NodeType) string {
	switch t {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping (key: value lines)"
	case ast.SequenceType:
		return "a list"
	}
	return strings.ToLower(t.String())
}

// fieldsAt lists the YAML keys of the struct at path under root.
func fieldsAt(root reflect.Type, path string) []string {
	t := root
	for rest := path; ; {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			return nil
		}
		rest = strings.TrimLeft(rest, ".")
		if i := strings.IndexByte(rest, '['); i == 0 {
			rest = rest[strings.IndexByte(rest, ']')+1:]
			continue
		}
		if rest == "" {
			break
		}
		name := rest
		if i := strings.IndexAny(rest, ".["); i >= 0 {
			name, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		f, ok := fieldByKey(t, name)
		if !ok {
			return nil
		}
		t = f
	}
	var out []string
	collectKeys(t, &out)
	return out
}

func yamlKey(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("yaml")
	if tag == "-" || !f.IsExported() {
		return "", false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(","+opts+",", ",inline,") {
		return "", true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false
}

func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, inline := yamlKey(f)
		if inline {
			if ft, ok := fieldByKey(derefType(f.Type), key); ok {
				return ft, true
			}
			continue
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

func collectKeys(t reflect.Type, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, inline := yamlKey(f)
		if inline {
			if ft := derefType(f.Type); ft.Kind() == reflect.Struct {
				collectKeys(ft, out)
			}
			continue
		}
		if name != "" {
			*out = append(*out, name)
		}
	}
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// suggest returns the known key closest to key, if it is close enough to
// be a typo.
func suggest(key string, known []string) string {
	best, bestD := "", 1<<30
	sort.Strings(known)
	for _, k := range known {
		if d := distance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(key) > 8 {
		limit = 3
	}
	if bestD > limit {
		return ""
	}
	return best
}

// distance is the Levenshtein distance, counting a swap of neighbours
// as one edit (ulr → url).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// syntaxProblem reports a file that is not YAML: the line and column where
// the parser gave up, the field it was in and the start of that line, in
// one line (go-yaml's own message reprints the source, and for an unclosed
// quote that is the rest of the file).
func syntaxProblem(data []byte, err error) Problem {
	e, ok := errorsAs[yaml.Error](err)
	if !ok {
		return Problem{FieldError: FieldError{Msg: oneLine(err.Error())}}
	}
	msg := oneLine(e.GetMessage())
	t := e.GetToken()
	if t == nil || t.Position == nil {
		return Problem{FieldError: FieldError{Msg: msg}}
	}
	ln, col := t.Position.Line, t.Position.Column
	lines := strings.Split(string(data), "\n")
	text := ""
	if ln >= 1 && ln <= len(lines) {
		text = strings.TrimRight(lines[ln-1], "\r")
	}
	switch {
	case strings.Contains(msg, "double-quoted"):
		msg = `unclosed " quote: it runs to the end of the file`
	case strings.Contains(msg, "single-quoted"):
		msg = `unclosed ' quote: it runs to the end of the file`
	case dupKey.MatchString(msg):
		m := dupKey.FindStringSubmatch(msg)
		msg = "appears twice in the same mapping (first on line " + m[1] + ")"
	case strings.Contains(text, "\t") && strings.Contains(msg, "cannot start any token"):
		msg = "a tab in the indentation; indent with spaces"
	}
	msg += fmt.Sprintf(" (column %d of: %s)", col, quoteLine(text))
	return Problem{Line: ln, FieldError: FieldError{Field: fieldOfLine(lines, ln), Msg: msg}}
}

var dupKey = regexp.MustCompile(`already defined at \[(\d+):\d+\]`)

func quoteLine(s string) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return strconv.Quote(s)
}

// fieldOfLine guesses the field a broken line belongs to: it parses the
// lines before it plus the broken line's key with a blank value.
func fieldOfLine(lines []string, ln int) string {
	if ln < 1 || ln > len(lines) {
		return ""
	}
	head := strings.Join(lines[:ln-1], "\n")
	cur := lines[ln-1]
	key, _, ok := strings.Cut(cur, ":")
	if !ok || strings.ContainsAny(key, `"'[{#`) {
		return ""
	}
	// A placeholder key, so that a duplicate key does not fail again.
	name := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(key), "- "))
	placeholder := strings.Replace(key, name, "vigil-placeholder-key", 1)
	file, err := parser.ParseBytes([]byte(head+"\n"+placeholder+": ~\n"), 0)
	if err != nil {
		return ""
	}
	found := ""
	for _, doc := range file.Docs {
		ast.Walk(visitFunc(func(n ast.Node) bool {
			if mv, ok := n.(*ast.MappingValueNode); ok && line(mv.Key.GetToken()) == ln && mv.Value != nil {
				found = strings.Replace(trimPath(mv.Value.GetPath()), "vigil-placeholder-key", name, 1)
			}
			return true
		}), doc)
	}
	return found
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	return s
}
