package edge_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/mosquitto"
)

// GB/T 28181 IDs of the tests: the platform (200), the box (118), a
// camera (132), an alarm input (134).
const (
	sgbServer = "34020000002000000001"
	sgbDevice = "34020000001180000001"
	sgbCamera = "34020000001320000001"
	sgbAlarm  = "34020000001340000001"
)

// setupGBNode starts an edge from the edge.yaml at path (a revision adopted),
// as the service does; restarts asked for arrive on restarted.
func setupGBNode(t *testing.T, path string) (node *edge.Node, restarted chan string) {
	t.Helper()
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := edge.OpenRevisions(cfg.DataDir).Adopt(path)
	if err != nil {
		t.Fatal(err)
	}
	restarted = make(chan string, 1)
	node, err = edge.Start(cfg, edge.Options{Log: testrig.Logger(t), ConfigRevision: rev.Name, ConfigPath: path,
		Restart: func(why string) {
			select {
			case restarted <- why:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node, restarted
}

// setupGBYAML is a gb28181 section with the password in clear, as an
// installer may have typed it into edge.yaml, offering the camera; the
// platform is not there (127.0.0.1:1) and the box's SIP port is any free
// one.
const setupGBYAML = `gb28181:
  server_id: "` + sgbServer + `"
  server_addr: 127.0.0.1:1
  device_id: "` + sgbDevice + `"
  password: inline-secret
  local_addr: 127.0.0.1:0
  channels:
    - {camera: gate-cam, id: "` + sgbCamera + `"}
`

// TestSetupGB28181SaveAndRefuse: the setup page's police platform step on
// a running edge with a camera and a sensor, and a gb28181 section whose
// password is in clear in edge.yaml. The form lists both devices, the
// password only as set. A form with a problem (an alarm input's type code
// on the camera, a camera's on the sensor, nineteen digits, a keepalive
// that is not a duration) is refused with the field named and changes
// nothing: no revision, no file left. A right one becomes one new
// revision with the password moved into a file of its own (0600) that the
// revision names, never in edge.yaml; the edge restarts on it. Saved
// again on the restarted edge with a new password, the retired password
// file is removed; turned off, the section and its file go.
func TestSetupGB28181SaveAndRefuse(t *testing.T) {
	broker := mosquitto.Start(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := filepath.Join(dir, "edge.yaml")
	body := "# the installer's file\n" + revConfig(data, "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", sensorsYAML(broker.URL())+setupGBYAML)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	node, restarted := setupGBNode(t, path)
	be := edge.SetupBackend(node)

	f, err := be.SetupGB28181()
	want := []setup.GBChannelForm{{Kind: setup.ChannelCamera, Device: "gate-cam", ID: sgbCamera}, {Kind: setup.ChannelSensor, Device: "cable-3", Name: "Box 3 cable"}}
	if err != nil || !f.Enabled || !slices.Equal(f.Channels, want) || !f.HasPassword || f.Password != "" || f.Transport != "udp" || f.ServerAddr != "127.0.0.1:1" {
		t.Fatalf("form: %+v %v", f, err)
	}

	// The registration as the node's GB side reports it: the platform is
	// not there, so the box is not registered (node.go wires it).
	st := be.SetupGBStatus()
	if st == nil || st.Online || st.DeviceID != sgbDevice || st.Server != "127.0.0.1:1" {
		t.Fatalf("registration: %+v", st)
	}
	revBefore := node.ConfigRevision()
	fileBefore, _ := os.ReadFile(path)
	before := listDir(t, data)
	refused := func(form setup.GB28181Form, field, msg string) {
		t.Helper()
		_, err := be.SetupSaveGB28181(form)
		var ref *setup.RefusedError
		if !errors.As(err, &ref) {
			t.Fatalf("want a refusal naming %s, got %v", field, err)
		}
		if !slices.ContainsFunc(ref.Problems, func(p setup.Problem) bool { return p.Field == field && strings.Contains(p.Msg, msg) }) {
			t.Errorf("refusal %q does not name %s (%q): %+v", ref.Reason, field, msg, ref.Problems)
		}
		if now, _ := os.ReadFile(path); string(now) != string(fileBefore) || node.ConfigRevision() != revBefore {
			t.Errorf("a refused form changed the config (revision %s)", node.ConfigRevision())
		}
		if got := listDir(t, data); !slices.Equal(got, before) {
			t.Errorf("a refused form left files: %v, was %v", got, before)
		}
	}
	bad := f
	bad.Channels = slices.Clone(f.Channels)
	bad.Channels[0].ID, bad.Channels[1].ID = sgbAlarm, sgbAlarm
	refused(bad, "gb28181.channels[0].id", "type code 134")
	bad.Channels[0].ID = sgbCamera
	bad.Channels[1].ID = sgbCamera
	refused(bad, "gb28181.channels[1].id", "type code 132")
	bad.Channels[1].ID = sgbAlarm[:19]
	refused(bad, "gb28181.channels[1].id", "19 characters")
	bad.Channels[1].ID = sgbAlarm
	bad.KeepaliveInterval = "often"
	refused(bad, "gb28181.keepalive_interval", "not a duration")
	bad.KeepaliveInterval = ""
	bad.DeviceID = sgbServer
	refused(bad, "gb28181.device_id", "equals server_id")
	bad.DeviceID = sgbDevice

	good := bad
	good.KeepaliveInterval, good.Transport = "30s", "tcp"
	good.Channels[1].ID = "" // the sensor stays off the platform
	res, err := be.SetupSaveGB28181(good)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != "restarting" || res.Revision == revBefore || filepath.Dir(res.PasswordFile) != data {
		t.Fatalf("save: %+v", res)
	}
	b, _ := os.ReadFile(path)
	rev, err := os.ReadFile(filepath.Join(data, "config", res.Revision+".yaml"))
	if err != nil || string(rev) != string(b) {
		t.Fatalf("revision %s is not the file in force (%v)", res.Revision, err)
	}
	if strings.Contains(string(b), "inline-secret") || !strings.Contains(string(b), "# the installer's file") {
		t.Errorf("edge.yaml:\n%s", b)
	}
	fi, err := os.Stat(res.PasswordFile)
	if p, _ := os.ReadFile(res.PasswordFile); err != nil || fi.Mode().Perm() != 0o600 || strings.TrimSpace(string(p)) != "inline-secret" {
		t.Errorf("password file %s: %v %v %q", res.PasswordFile, fi, err, p)
	}
	cfg, err := edge.ParseConfig(res.Revision, rev)
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.GB28181
	if g == nil || g.ServerID != sgbServer || g.DeviceID != sgbDevice || g.Password != "" || g.PasswordFile != res.PasswordFile ||
		g.KeepaliveInterval.D() != 30*time.Second || g.Transport != "tcp" || g.LocalAddr != "127.0.0.1:0" || !slices.Equal(g.Channels, []conf.GBChannelConfig{{Camera: "gate-cam", ID: sgbCamera}}) {
		t.Errorf("revision %s's gb28181: %+v", res.Revision, g)
	}
	select {
	case why := <-restarted:
		t.Logf("restart: %s", why)
	case <-time.After(5 * time.Second):
		t.Fatal("the edge did not restart on a gb28181 revision")
	}

	// The restarted edge shows the section, the password only as set; a
	// new password retires the old file.
	node.Close()
	node, _ = setupGBNode(t, path)
	be = edge.SetupBackend(node)
	f, _ = be.SetupGB28181()
	if !f.Enabled || !f.HasPassword || f.Password != "" || f.KeepaliveInterval != "30s" || f.Channels[0].ID != sgbCamera {
		t.Fatalf("form after the restart: %+v", f)
	}
	f.Password = "rotated-secret"
	res2, err := be.SetupSaveGB28181(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res.PasswordFile); !os.IsNotExist(err) {
		t.Errorf("the retired password file stays: %v", err)
	}
	if p, _ := os.ReadFile(res2.PasswordFile); strings.TrimSpace(string(p)) != "rotated-secret" {
		t.Errorf("new password file %s: %q", res2.PasswordFile, p)
	}

	// Off: the section and its password file go.
	f.Enabled, f.Password = false, ""
	if _, err := be.SetupSaveGB28181(f); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "gb28181") {
		t.Errorf("the section stays:\n%s", b)
	}
	if _, err := os.Stat(res2.PasswordFile); !os.IsNotExist(err) {
		t.Errorf("the password file of a removed platform stays: %v", err)
	}
}

// TestGB28181SetupStepInBrowser: in Chromium, on a running edge's setup page,
// the installer turns the police platform on, fills the platform's
// fields, sees a camera ID with an alarm input's type code flagged
// inline, fills the camera's ID from a base ID, is refused with the
// password marked while none is set, and saves once it is typed: the
// revision the page reports holds the gb28181 section with the password
// in a file and the camera's channel.
func TestGB28181SetupStepInBrowser(t *testing.T) {
	root, _ := filepath.Abs("..")
	for _, need := range []string{"/usr/bin/chromium", filepath.Join(root, "node_modules", "playwright-core", "package.json")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s missing: make test installs Chromium and playwright-core", need)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node missing: make test installs it")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(path, []byte(revConfig(data, "127.0.0.1:0", "ws://127.0.0.1:1/api/v1/edge/ws", "rtsp://127.0.0.1:1/gate", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	node, _ := setupGBNode(t, path)
	name, rev := runSetupPage(t, node, data, "gb28181.browser.mjs")
	if strings.Contains(string(rev), "browser-secret") {
		t.Errorf("revision %s holds the password in clear", name)
	}
	cfg, err := edge.ParseConfig(name, rev)
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.GB28181
	if g == nil || g.ServerID != sgbServer || g.ServerAddr != "10.1.2.3:5060" || g.Transport != "tcp" || g.DeviceID != sgbDevice ||
		g.Password != "" || g.PasswordFile == "" || !slices.Equal(g.Channels, []conf.GBChannelConfig{{Camera: "gate-cam", ID: "34020000001320000007"}}) {
		t.Fatalf("revision %s's gb28181: %+v", name, g)
	}
	if p, err := os.ReadFile(g.PasswordFile); err != nil || strings.TrimSpace(string(p)) != "browser-secret" {
		t.Errorf("password file %s: %q %v", g.PasswordFile, p, err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(rev) {
		t.Errorf("the file in force is not revision %s", name)
	}
}
