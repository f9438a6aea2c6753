package evidence

import (
	"os"
	"testing"
)

// TestMain removes the shared fixture and, with -tags matprofile, fails
// the package if a gocv Mat was left open (matCheck).
func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		os.RemoveAll(fix.dir)
	}
	os.Exit(matCheck(code))
}
