package central

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/vigil-perimeter/vigil/central/web"
	"github.com/vigil-perimeter/vigil/internal/webshared"
)

// contentSecurityPolicy allows only this origin's scripts, styles and
// websockets, and images from here or data: URLs. The page never builds
// HTML from alert data, so nothing an edge sends can run as script.
// media-src blob: lets live view feed <video> through Media Source
// Extensions (an object URL of a MediaSource).
// frame-ancestors 'none': no other page may frame the console (clickjacking).
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'"

// staticHandler serves the embedded console page and its assets, and at
// /shared/ the modules the console shares with the edge's setup page
// (internal/webshared: the translator and the DOM helpers).
func staticHandler() http.Handler {
	files := http.FileServerFS(webshared.With(web.Files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/admin") { // only through adminHandler
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // revalidate so an upgrade shows at once
		files.ServeHTTP(w, r)
	})
}

// adminHandler serves the admin page (web/admin/) under /admin/; the route
// policy lets only admins reach it.
func adminHandler() http.Handler {
	sub, err := fs.Sub(web.Files, "admin")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/admin/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	})
}
