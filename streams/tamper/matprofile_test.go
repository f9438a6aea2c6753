//go:build matprofile

package tamper

import (
	"testing"

	"github.com/vigil-perimeter/vigil/internal/matcheck"
)

// TestMain fails the package if a test left a gocv Mat open.
func TestMain(m *testing.M) { matcheck.Main(m) }
