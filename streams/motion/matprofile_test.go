//go:build matprofile

package motion_test

import (
	"testing"

	"github.com/vigil-perimeter/vigil/internal/matcheck"
)

// TestMain fails the package if a test left a gocv Mat open.
func TestMain(m *testing.M) { matcheck.Main(m) }
