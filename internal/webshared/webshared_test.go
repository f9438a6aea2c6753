package webshared

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// The web UIs whose scripts must use the shared modules, relative to this
// package's folder (go test runs in it).
var uiDirs = []string{"../../central/web", "../../edge/setup/web"}

// i18nAPI is what createI18n gives each UI; a UI that defines one of
// these itself has a second translator.
var i18nAPI = []string{"t", "tEnum", "applyI18n", "setLang", "currentLang", "getLang", "onLangChange", "createI18n"}

func TestWithAddsSharedFolder(t *testing.T) {
	base := fstest.MapFS{"index.html": {Data: []byte("page")}, "app.js": {Data: []byte("app")}}
	fsys := With(base)
	for _, name := range []string{"i18n.js", "dom.js"} {
		want, err := fs.ReadFile(Files, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile(fsys, Dir+"/"+name)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s/%s: %v, same as Files: %v", Dir, name, err, string(got) == string(want))
		}
	}
	if b, err := fs.ReadFile(fsys, "index.html"); err != nil || string(b) != "page" {
		t.Errorf("index.html: %q %v", b, err)
	}
	if d, err := fs.ReadDir(fsys, Dir); err != nil || len(d) < 2 {
		t.Errorf("ReadDir(%s): %v %v", Dir, d, err)
	}
	if _, err := fsys.Open(Dir + "/nope.js"); err == nil {
		t.Error("a file that is not shared opens")
	}
	if _, err := fsys.Open("nope.js"); err == nil {
		t.Error("a file that is not in base opens")
	}
}

type jsFile struct{ name, src string }

func uiScripts(t *testing.T) []jsFile {
	t.Helper()
	var out []jsFile
	for _, dir := range uiDirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Name() == "vendor" {
				return fs.SkipDir // third-party code shipped as published (central/vendor_test.go)
			}
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, jsFile{strings.TrimPrefix(filepath.ToSlash(path), "../../"), string(b)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, Dir)); err == nil {
			t.Errorf("%s/%s exists: With hides it", dir, Dir)
		}
	}
	if len(out) < 8 {
		t.Fatalf("found only %d scripts in %v", len(out), uiDirs)
	}
	return out
}

func sharedScripts(t *testing.T) []jsFile {
	t.Helper()
	var out []jsFile
	names, err := fs.Glob(Files, "*.js")
	if err != nil || len(names) < 2 {
		t.Fatalf("shared modules: %v %v", names, err)
	}
	for _, n := range names {
		b, _ := fs.ReadFile(Files, n)
		out = append(out, jsFile{"internal/webshared/" + n, string(b)})
	}
	return out
}

// TestNoHelperDefinedTwice: the console and the setup page define none of
// the shared modules' helpers themselves (el, td, injectCSS, $, the
// translator's functions), and no function is defined twice with the same
// body, under the same name or another, in the UIs and the shared modules.
func TestNoHelperDefinedTwice(t *testing.T) {
	ui, shared := uiScripts(t), sharedScripts(t)

	var (
		exported = regexp.MustCompile(`(?m)^export\s+(?:async\s+)?(?:function\s+|(?:const|let)\s+)([\w$]+)`)
		funcDef  = regexp.MustCompile(`\bfunction\s+([\w$]+)\s*\(`)
	)
	helpers := map[string]string{} // name → shared module
	for _, f := range shared {
		for _, m := range exported.FindAllStringSubmatch(f.src, -1) {
			helpers[m[1]] = f.name
		}
		if strings.HasSuffix(f.name, "/i18n.js") {
			defined := map[string]bool{}
			for _, m := range funcDef.FindAllStringSubmatch(f.src, -1) {
				defined[m[1]] = true
			}
			for _, n := range i18nAPI {
				if n != "getLang" && !defined[n] {
					t.Errorf("%s: no function %s (i18nAPI is out of date)", f.name, n)
				}
				helpers[n] = f.name
			}
		}
	}
	for _, want := range []string{"$", "el", "td", "injectCSS", "createI18n"} {
		if helpers[want] == "" {
			t.Errorf("the shared modules do not export %s", want)
		}
	}
	names := make([]string, 0, len(helpers))
	for n := range helpers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, f := range ui {
		for _, name := range names {
			home := helpers[name]
			q := regexp.QuoteMeta(name)
			def := regexp.MustCompile(`(?m)(?:\bfunction\s+` + q + `\s*\(|^(?:export\s+)?(?:const|let|var)\s+` + q + `\s*=)`)
			if loc := def.FindStringIndex(f.src); loc != nil {
				line := strings.Count(f.src[:loc[0]], "\n") + 1
				t.Errorf("%s:%d defines %s again: import it from %s", f.name, line, name, home)
			}
		}
	}

	// The same definition twice, whatever it is called.
	var (
		topFunc  = regexp.MustCompile(`(?ms)^(?:export\s+)?(?:async\s+)?function\s+([\w$]+)\s*(\(.*?)^\}`)
		topArrow = regexp.MustCompile(`(?m)^(?:export\s+)?const\s+([\w$]+)\s*=\s*(\([^)]*\)\s*=>.*|[\w$]+\s*=>.*)$`)
		space    = regexp.MustCompile(`\s+`)
	)
	seen := map[string]string{} // normalised parameters and body → where
	defs := 0
	for _, f := range slices.Concat(ui, shared) {
		for _, re := range []*regexp.Regexp{topFunc, topArrow} {
			for _, m := range re.FindAllStringSubmatchIndex(f.src, -1) {
				name, body := f.src[m[2]:m[3]], space.ReplaceAllString(f.src[m[4]:m[5]], " ")
				where := f.name + ":" + name
				if prev, ok := seen[body]; ok {
					t.Errorf("%s is a copy of %s: share one (internal/webshared)", where, prev)
				}
				seen[body] = where
				defs++
			}
		}
	}
	if defs < 40 {
		t.Fatalf("found only %d top-level definitions", defs)
	}
}

// Every import of a UI script names a file that is served: its own files
// or the shared folder.
func TestUIImportsResolve(t *testing.T) {
	imp := regexp.MustCompile(`(?m)(?:^(?:import|export)\b[^'\n;]*\bfrom\s*|^import\s*|\bimport\(\s*)'([^']+)'`)
	sharedUse := 0
	for _, dir := range uiDirs {
		root := With(os.DirFS(dir))
		err := fs.WalkDir(root, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
				return err
			}
			b, err := fs.ReadFile(root, path)
			if err != nil {
				return err
			}
			for _, m := range imp.FindAllStringSubmatch(string(b), -1) {
				target := m[1]
				if strings.HasPrefix(target, "/") {
					target = strings.TrimPrefix(target, "/")
				} else {
					target = filepath.ToSlash(filepath.Join(filepath.Dir(path), target))
				}
				if strings.HasPrefix(target, Dir+"/") {
					sharedUse++
				}
				if _, err := fs.Stat(root, target); err != nil {
					t.Errorf("%s/%s imports %q: %v", dir, path, m[1], err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if sharedUse < 8 {
		t.Errorf("only %d imports of the shared modules", sharedUse)
	}
}
