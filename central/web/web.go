// Package web holds the console page's static files, embedded in the binary
// so central ships as one file with no build step for the browser side.
package web

import "embed"

// Files are index.html, app.js and style.css at the root; vendor/ holds
// the third-party chart library (uPlot, with its licence), copied as
// published from node_modules (central/vendor_test.go checks).
//
//go:embed *.html *.js *.css i18n admin vendor
var Files embed.FS
