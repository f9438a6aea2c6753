package cli

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

func TestProvisionProbe(t *testing.T) {
	clip := testrig.Clip(t, footage.BurstsClip{Seconds: 10, FPS: 10, Width: 320, Height: 240, Bursts: []footage.Burst{{Start: 5, End: 9}}})
	srv, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: clip}}, User: "admin", Password: "s3cret", Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	snap := filepath.Join(t.TempDir(), "cam.jpg")
	var out, errb bytes.Buffer
	if code := Main([]string{"provision", "probe", "--user", "admin", "--password", "s3cret", "--snapshot", snap, srv.URL("cam")}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "H264 320x240 10.00 fps, digest authentication") {
		t.Errorf("output %q", out.String())
	}
	f, _ := os.Open(snap)
	if _, err := jpeg.Decode(f); err != nil {
		t.Errorf("snapshot: %v", err)
	}
	f.Close()
	out.Reset()
	errb.Reset()
	if code := Main([]string{"provision", "probe", "--user", "admin", "--password", "guess", srv.URL("cam")}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "wrong user name or password") {
		t.Errorf("wrong password: exit %d, %q", code, errb.String())
	}
}
