package sipp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/kamailio"
)

// Kamailio answers an OPTIONS for an unknown user 404: the scenario that
// expects it exits 0, the same scenario expecting 200 exits 1.
func TestExitStatus(t *testing.T) {
	k := kamailio.Start(t, kamailio.Options{ServerID: "34020000002000000001", Domain: "3402000000", Password: "pw"})
	ok := Start(t, Options{Scenario: "testdata/options_404.xml", Remote: k.Addr(), Calls: 1, Timeout: 10 * time.Second}).Wait()
	if ok.ExitCode != 0 {
		t.Fatalf("exit %d\n%s\n%s", ok.ExitCode, ok.Errors, ok.Output)
	}
	if !strings.Contains(ok.Messages, "SIP/2.0 404") {
		t.Errorf("message trace has no 404:\n%s", ok.Messages)
	}
	b, err := os.ReadFile("testdata/options_404.xml")
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(t.TempDir(), "options_200.xml")
	if err := os.WriteFile(wrong, []byte(strings.Replace(string(b), `response="404"`, `response="200"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := Start(t, Options{Scenario: wrong, Remote: k.Addr(), Calls: 1, Timeout: 10 * time.Second}).Wait()
	if bad.ExitCode != 1 {
		t.Errorf("expecting 200 from a 404: exit %d, want 1\n%s", bad.ExitCode, bad.Output)
	}
}
