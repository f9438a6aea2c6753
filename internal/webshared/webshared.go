// Package webshared holds the browser modules that both web UIs load, so
// each helper has one source: i18n.js (the translator; each UI loads its
// own dictionaries into it) and dom.js (DOM helpers: $, el, td,
// injectCSS). Central's console serves them at /shared/ (central/static.go)
// and the edge's setup page at /setup/shared/ (edge/setup/setup.go): With
// adds them to a UI's files as the folder shared/, under the same headers
// (Content-Security-Policy script-src 'self' holds: same origin).
// webshared_test.go fails when a UI defines one of these helpers again.
package webshared

import (
	"embed"
	"io/fs"
	"strings"
)

// Files are the shared modules, at the root.
//
//go:embed *.js
var Files embed.FS

// Dir is the folder the modules appear in under a UI's files.
const Dir = "shared"

// With returns base with Files added as the folder shared/ (a folder of
// that name in base is hidden).
func With(base fs.FS) fs.FS { return withShared{base} }

type withShared struct{ base fs.FS }

func (w withShared) Open(name string) (fs.File, error) {
	switch {
	case name == Dir:
		return Files.Open(".")
	case strings.HasPrefix(name, Dir+"/"):
		return Files.Open(strings.TrimPrefix(name, Dir+"/"))
	}
	return w.base.Open(name)
}
