package central

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/central/web"
)

// The console's chart library is uPlot exactly as published: the
// vendored files equal node_modules/uplot's (package.json pins the
// version; npm ci installs it), its MIT licence ships beside it, and
// central serves the script as JavaScript under the console's CSP.
func TestVendoredUPlotIsThePinnedRelease(t *testing.T) {
	root := filepath.Join("..", "node_modules", "uplot")
	var pkg struct{ Name, Version, License string }
	b, err := os.ReadFile(filepath.Join(root, "package.json"))
	if err != nil {
		t.Fatalf("%v (run npm ci at the repository root)", err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	var top struct{ Dependencies map[string]string }
	b, err = os.ReadFile(filepath.Join("..", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if pkg.Name != "uplot" || top.Dependencies["uplot"] != pkg.Version || pkg.License != "MIT" {
		t.Fatalf("node_modules/uplot is %s %s (%s); package.json pins %q", pkg.Name, pkg.Version, pkg.License, top.Dependencies["uplot"])
	}
	for vendored, published := range map[string]string{
		"vendor/uPlot.iife.min.js": "dist/uPlot.iife.min.js",
		"vendor/uPlot.min.css":     "dist/uPlot.min.css",
		"vendor/uPlot.LICENSE":     "LICENSE",
	} {
		got, err := fs.ReadFile(web.Files, vendored)
		if err != nil {
			t.Fatalf("the console does not ship %s: %v", vendored, err)
		}
		want, err := os.ReadFile(filepath.Join(root, published))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from uplot %s's %s", vendored, pkg.Version, published)
		}
	}
	lic, _ := fs.ReadFile(web.Files, "vendor/uPlot.LICENSE")
	if !strings.Contains(string(lic), "MIT License") || !strings.Contains(string(lic), "Leon Sorokin") {
		t.Errorf("vendor/uPlot.LICENSE is not uPlot's MIT licence:\n%s", lic)
	}

	s := startServer(t)
	resp, err := http.Get("http://" + s.Addr() + "/vendor/uPlot.iife.min.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want, _ := fs.ReadFile(web.Files, "vendor/uPlot.iife.min.js")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !bytes.Equal(body, want) {
		t.Errorf("GET /vendor/uPlot.iife.min.js: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if resp.Header.Get("Content-Security-Policy") != contentSecurityPolicy {
		t.Errorf("GET /vendor/uPlot.iife.min.js: CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
}
