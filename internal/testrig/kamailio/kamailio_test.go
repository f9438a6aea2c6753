package kamailio

import (
	"strings"
	"testing"
)

func TestStartRestart(t *testing.T) {
	k := Start(t, Options{ServerID: "34020000002000000001", Domain: "3402000000", Password: "pw"})
	out, err := k.Locations()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Domain: location") {
		t.Fatalf("ul.dump has no location table:\n%s", out)
	}
	if k.Registered("34020000001180000001") {
		t.Error("an empty registrar reports a device registered")
	}
	k.Restart()
	if _, err := k.Locations(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
