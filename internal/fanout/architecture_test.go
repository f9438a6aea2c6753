package fanout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every broadcaster uses this package: no other package may loop over its
// subscribers and send to each with a select that has a default (the
// hand-made fan-out, each with its own drop logic, that Hub replaced),
// whether the select is in the loop or in a function of the same package
// that the loop calls (central's live view had an enqueue helper).
// Point-to-point queues (one channel, no loop over receivers: the edge's
// per-camera live queue, uplink.Stream) are not fan-outs and pass.
func TestNoHandMadeFanOut(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	self, _ := filepath.Abs(".")
	fset := token.NewFileSet()
	pkgs := map[string][]*ast.File{} // by directory
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			abs, _ := filepath.Abs(path)
			name := d.Name()
			if abs == self || name == "node_modules" || name == "testdata" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil // not ours to judge (a generated or broken file)
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for dir, files := range pkgs {
		// Functions that try-send to a channel reached through one of their
		// parameters or their receiver (an enqueue(sub, v) helper).
		trySenders := map[string]bool{}
		for _, f := range files {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil && hasTrySend(fd.Body, params(fd)) {
					trySenders[callName(fd)] = true
				}
			}
		}
		for _, f := range files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				where := filepath.ToSlash(filepath.Join(dir, filepath.Base(fset.Position(f.Pos()).Filename))) + ":" + fd.Name.Name
				where = strings.TrimPrefix(where, "../../")
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					loop, ok := n.(*ast.RangeStmt)
					if !ok {
						return true
					}
					if hasTrySend(loop.Body, nil) || callsAny(loop.Body, trySenders) {
						if _, ok := notFanOuts[where]; !ok {
							found = append(found, fset.Position(loop.Pos()).String()+" (in "+fd.Name.Name+")")
						}
					}
					return true
				})
			}
		}
	}
	for _, at := range found {
		t.Errorf("%s: a loop that try-sends to each of several channels; use internal/fanout.Hub", at)
	}
}

// notFanOuts are loops over receivers that are not subscriptions, by
// file:function, with the reason.
var notFanOuts = map[string]string{
	// Hands one checkpoint to every connected edge through each
	// connection's own send queue, which also carries requests and acks:
	// a connection is not a subscriber a Hub could own, and a full queue
	// there already means "this edge gets the next checkpoint".
	"central/audit_checkpoint.go:broadcast": "per-connection send queue",
}

// params are the names of fd's receiver and parameters.
func params(fd *ast.FuncDecl) map[string]bool {
	out := map[string]bool{}
	for _, fl := range []*ast.FieldList{fd.Recv, fd.Type.Params} {
		if fl == nil {
			continue
		}
		for _, f := range fl.List {
			for _, n := range f.Names {
				out[n.Name] = true
			}
		}
	}
	return out
}

// root is the identifier an expression such as v.q or s.subs[k].ch starts
// from.
func root(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x.Name
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		default:
			return ""
		}
	}
}

// hasTrySend: n holds (outside function literals, which run elsewhere) a
// select with a default case and a send case, to a channel rooted in one
// of roots if roots is not nil.
func hasTrySend(n ast.Node, roots map[string]bool) bool {
	found := false
	ast.Inspect(n, func(m ast.Node) bool {
		if found {
			return false
		}
		switch m := m.(type) {
		case *ast.FuncLit:
			return false
		case *ast.SelectStmt:
			send, def := false, false
			for _, c := range m.Body.List {
				switch c.(*ast.CommClause).Comm.(type) {
				case nil:
					def = true
				case *ast.SendStmt:
					st := c.(*ast.CommClause).Comm.(*ast.SendStmt)
					if isWakeUp(st.Value) {
						continue // a wake-up poke hands no value to anyone
					}
					send = send || roots == nil || roots[root(st.Chan)]
				}
			}
			found = send && def
		}
		return true
	})
	return found
}

// isWakeUp: v is struct{}{}, the value of a "there is work" signal.
func isWakeUp(v ast.Expr) bool {
	cl, ok := v.(*ast.CompositeLit)
	if !ok || len(cl.Elts) != 0 {
		return false
	}
	st, ok := cl.Type.(*ast.StructType)
	return ok && (st.Fields == nil || len(st.Fields.List) == 0)
}

// callName is how callsAny names fd: "f" for a function, ".m" for a
// method, so a local closure called add does not match a method add.
func callName(fd *ast.FuncDecl) string {
	if fd.Recv != nil {
		return "." + fd.Name.Name
	}
	return fd.Name.Name
}

// callsAny: n calls (outside function literals) a function ("f") or a
// method (".m") named in names.
func callsAny(n ast.Node, names map[string]bool) bool {
	found := false
	ast.Inspect(n, func(m ast.Node) bool {
		if found {
			return false
		}
		switch m := m.(type) {
		case *ast.FuncLit, *ast.ReturnStmt:
			return false // a returned call ends the loop: one receiver, not each
		case *ast.CallExpr:
			switch fn := m.Fun.(type) {
			case *ast.Ident:
				found = names[fn.Name]
			case *ast.SelectorExpr:
				found = names["."+fn.Sel.Name] || names[fn.Sel.Name] // a method, or a function of another package's name
			}
		}
		return true
	})
	return found
}
