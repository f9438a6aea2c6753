//go:build matprofile

package evidence

import (
	"fmt"
	"os"

	"gocv.io/x/gocv"
)

// matCheck is internal/matcheck.Main's check, after the fixture cleanup
// that matcheck.Main's os.Exit would skip.
func matCheck(code int) int {
	if n := gocv.MatProfile.Count(); n != 0 {
		fmt.Fprintf(os.Stderr, "matprofile: %d gocv Mats were never closed:\n", n)
		gocv.MatProfile.WriteTo(os.Stderr, 1)
		return 1
	}
	if code == 0 {
		fmt.Println("matprofile: every gocv Mat was closed")
	}
	return code
}
