// Package web holds the console page's static files, embedded in the binary
// so central ships as one file with no build step for the browser side.
package web

import "embed"

// Files are index.html, app.js and style.css at the root.
//
//go:embed *.html *.js *.css i18n admin
var Files embed.FS
