// Command vigil-central is the central-only build of vigil: `vigil
// central ...` and `vigil evidence ...` without the edge, the camera path
// or any video decoding, so it builds with CGO_ENABLED=0 (no FFmpeg, no
// OpenCV). Contact sheets for evidence bundles are made by the edges,
// which decode anyway, and fetched with the video (central/retrieval.go).
package main

import (
	"os"

	"github.com/vigil-perimeter/vigil/internal/centralcli"
)

func main() {
	os.Exit(centralcli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
