package setup

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/webshared"
)

// TestSetupServesSharedModules: the setup page serves the modules it
// shares with central's console (internal/webshared) at /setup/shared/,
// before the code is entered (the sign-in form is translated), as
// JavaScript under the page's Content-Security-Policy, and its i18n.js
// loads the shared translator.
func TestSetupServesSharedModules(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	fetch := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for _, name := range []string{"i18n.js", "dom.js"} {
		want, err := fs.ReadFile(webshared.Files, name)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := fetch("/setup/shared/" + name)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("GET /setup/shared/%s: %d %q", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if body != string(want) {
			t.Errorf("GET /setup/shared/%s is not internal/webshared/%s", name, name)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self';") {
			t.Errorf("GET /setup/shared/%s: CSP %q", name, csp)
		}
	}
	if resp, _ := fetch("/setup/shared/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /setup/shared/nope.js: %d", resp.StatusCode)
	}
	if _, body := fetch("/setup/i18n.js"); !strings.Contains(body, "from './shared/i18n.js'") || strings.Contains(body, "function t(") {
		t.Errorf("the setup page's i18n.js does not load the shared translator:\n%s", body)
	}
	if _, body := fetch("/setup/setup.js"); !strings.Contains(body, "from './shared/dom.js'") {
		t.Error("setup.js does not import the shared DOM helpers")
	}
}
