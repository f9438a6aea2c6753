package central

import (
	"net/http"

	"github.com/vigil-perimeter/vigil/central/web"
)

// contentSecurityPolicy allows only this origin's scripts, styles and
// websockets, and images from here or data: URLs. The page never builds
// HTML from alert data, so nothing an edge sends can run as script.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:"

// staticHandler serves the embedded console page and its assets.
func staticHandler() http.Handler {
	files := http.FileServerFS(web.Files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // revalidate so an upgrade shows at once
		files.ServeHTTP(w, r)
	})
}
