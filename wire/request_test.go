package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Methods lists every Method* constant of this package, once: a method
// added to the wire without being added there would have no handler check
// on the edge (edge.TestRequestRoutesOnNode).
func TestMethodsListsEveryMethodConstant(t *testing.T) {
	fset := token.NewFileSet()
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Method") {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s is not a string literal", name.Name)
					}
					v, _ := strconv.Unquote(lit.Value)
					consts = append(consts, v)
				}
			}
		}
	}
	methods := Methods()
	if a, b := slices.Sorted(slices.Values(consts)), slices.Sorted(slices.Values(methods)); !slices.Equal(a, b) {
		t.Errorf("Method* constants %v, Methods() lists %v", a, b)
	}
	seen := map[string]bool{}
	for _, m := range methods {
		if seen[m] {
			t.Errorf("Methods() lists %q twice", m)
		}
		seen[m] = true
	}
	// Each listed method is one Validate knows (an unknown one is refused
	// whatever its fields).
	for _, m := range methods {
		r := Request{ID: "r1", Method: m}
		if err := r.Validate(); err != nil && strings.Contains(err.Error(), "unknown method") {
			t.Errorf("Validate does not know %q: %v", m, err)
		}
	}
	r := Request{ID: "r1", Method: "no_such_method"}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Errorf("unknown method: %v", err)
	}
	if slices.Contains(methods, "") {
		t.Error("Methods() lists an empty method")
	}
}
