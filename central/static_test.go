package central

import (
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/webshared"
)

// TestStaticSharedModules: the console serves the modules it shares with
// the edge's setup page (internal/webshared) at /shared/, to anyone (the
// sign-in page needs the translator), as JavaScript under the console's
// Content-Security-Policy, and its i18n.js loads the shared translator.
func TestStaticSharedModules(t *testing.T) {
	s := startServer(t)
	fetch := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + path) // no session, no token
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
		resp, body := fetch("/shared/" + name)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("GET /shared/%s: %d %q", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if body != string(want) {
			t.Errorf("GET /shared/%s is not internal/webshared/%s", name, name)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("GET /shared/%s: CSP %q", name, got)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET /shared/%s: X-Content-Type-Options %q", name, got)
		}
	}
	if resp, _ := fetch("/shared/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /shared/nope.js: %d", resp.StatusCode)
	}
	if _, body := fetch("/i18n.js"); !strings.Contains(body, "from './shared/i18n.js'") || strings.Contains(body, "function t(") {
		t.Errorf("the console's i18n.js does not load the shared translator:\n%s", body)
	}
}
