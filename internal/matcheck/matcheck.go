//go:build matprofile

// Package matcheck fails a test binary that ends with gocv Mats still open.
// It only exists in builds with `-tags matprofile` (as `make test` runs),
// because gocv counts Mats only then.
package matcheck

import (
	"fmt"
	"os"
	"testing"

	"gocv.io/x/gocv"
)

// Main runs the tests, then checks that every Mat was closed.
func Main(m *testing.M) {
	code := m.Run()
	if n := gocv.MatProfile.Count(); n != 0 {
		fmt.Fprintf(os.Stderr, "matprofile: %d gocv Mats were never closed:\n", n)
		gocv.MatProfile.WriteTo(os.Stderr, 1)
		code = 1
	} else if code == 0 {
		fmt.Println("matprofile: every gocv Mat was closed")
	}
	os.Exit(code)
}
