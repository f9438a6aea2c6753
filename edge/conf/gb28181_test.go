package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gbConfig is sensorsConfig with a gate and a gb28181 section mapping the
// camera, the gate and a sensor to channels.
const gbConfig = sensorsConfig + `gates:
  - id: main
    name: Main gate
    cameras: [cam-1]
gb28181:
  server_id: "34020000002000000001"
  server_addr: 10.20.30.40:5060
  device_id: "34020000001180000001"
  password: Vigil-12345678
  keepalive_interval: 30s
  channels:
    - {camera: cam-1, id: "34020000001320000001"}
    - {gate: main, id: "34020000001340000001", name: 东门门磁}
    - {sensor: gas-kitchen, id: "34020000001340000002"}
`

func TestGB28181ConfLoads(t *testing.T) {
	cfg, err := Load(writeConfig(t, gbConfig))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.GB28181
	if g == nil || len(g.Channels) != 3 || g.Channels[1].Name != "东门门磁" {
		t.Fatalf("gb28181 %+v", g)
	}
	p, err := g.ResolvePassword()
	if err != nil || p != "Vigil-12345678" {
		t.Fatalf("password %q %v", p, err)
	}
	dc := g.Device(p, "edge")
	if dc.Keepalive != 30*time.Second || dc.ServerAddr != "10.20.30.40:5060" || dc.Password != p {
		t.Errorf("device config %+v", dc)
	}
	for i, want := range [][2]string{{"camera", "cam-1"}, {"gate", "main"}, {"sensor", "gas-kitchen"}} {
		if k, id := g.Channels[i].Source(); k != want[0] || id != want[1] {
			t.Errorf("channels[%d] source %s %s, want %v", i, k, id, want)
		}
	}
	// Off when absent.
	cfg, err = Load(writeConfig(t, sensorsConfig))
	if err != nil || cfg.GB28181 != nil {
		t.Fatalf("without gb28181: %+v %v", cfg.GB28181, err)
	}
}

// Every problem is placed by file, line and the yaml field: the
// channels' references and IDs, and the device's own fields.
func TestGB28181ConfErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown camera", "{camera: cam-1,", "{camera: cam-9,", `edge.yaml:44: gb28181.channels[0].camera: unknown camera "cam-9"`},
		{"unknown gate", "{gate: main,", "{gate: side,", `gb28181.channels[1].gate: unknown gate "side"`},
		{"unknown sensor", "{sensor: gas-kitchen,", "{sensor: gas-attic,", `gb28181.channels[2].sensor: unknown sensor "gas-attic"`},
		{"no source", "{sensor: gas-kitchen, id", "{id", "gb28181.channels[2]: name exactly one of camera, gate or sensor"},
		{"two sources", "{gate: main,", "{gate: main, camera: cam-1,", "gb28181.channels[1]: name exactly one"},
		{"camera as alarm input", `{camera: cam-1, id: "34020000001320000001"}`, `{camera: cam-1, id: "34020000001340000009"}`,
			`edge.yaml:44: gb28181.channels[0].id: camera channel: GB ID "34020000001340000009" has type code 134 (alarm input)`},
		{"sensor as camera", `{sensor: gas-kitchen, id: "34020000001340000002"}`, `{sensor: gas-kitchen, id: "34020000001320000002"}`,
			`gb28181.channels[2].id: alarm channel: GB ID "34020000001320000002" has type code 132`},
		{"short id", `id: "34020000001340000002"`, `id: "3402000000134000002"`, `gb28181.channels[2].id: alarm channel: GB ID "3402000000134000002" has 19 characters`},
		{"duplicate id", `id: "34020000001340000002"`, `id: "34020000001340000001"`, `gb28181.channels[2].id: "34020000001340000001" is used twice (also channels[1])`},
		{"same gate twice", "{sensor: gas-kitchen,", "{gate: main,", `gb28181.channels[2].gate: gate "main" already has channel 1`},
		{"bad server id", `server_id: "34020000002000000001"`, `server_id: "3402000000200000001"`, "edge.yaml:38: gb28181.server_id: GB ID"},
		{"bad server addr", "server_addr: 10.20.30.40:5060", "server_addr: 10.20.30.40", "gb28181.server_addr:"},
		{"bad transport", "keepalive_interval: 30s", "keepalive_interval: 30s\n  transport: sctp", `gb28181.transport: "sctp", want udp or tcp`},
		{"keepalive", "keepalive_interval: 30s", "keepalive_interval: 1ms", "gb28181.keepalive_interval: 1ms is too short"},
		{"no password", "  password: Vigil-12345678\n", "", "gb28181.password: set password or password_file"},
		{"both passwords", "  password: Vigil-12345678\n", "  password: Vigil-12345678\n  password_file: /etc/vigil/gb.password\n", "gb28181.password_file: set either"},
		{"time zone", "keepalive_interval: 30s", "keepalive_interval: 30s\n  time_zone: Mars/Olympus", "gb28181.time_zone:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(gbConfig, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			p := writeConfig(t, strings.Replace(gbConfig, tc.from, tc.to, 1))
			_, err := Load(p)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			msg := strings.ReplaceAll(err.Error(), p, "edge.yaml")
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error:\n%s\nwant %q", msg, tc.want)
			}
		})
	}
}

func TestGB28181ConfEmptyChannelList(t *testing.T) {
	cfg, err := Load(writeConfig(t, gbConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.GB28181.Channels = nil
	errs := cfg.Validate()
	if len(errs) != 1 || errs[0].Field != "gb28181.channels" {
		t.Errorf("no channels: %v", errs)
	}
}

// password_file is read when the edge starts (the file lives only on the
// box): trimmed, and its problems named.
func TestGB28181ConfPasswordFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "gb.password")
	if err := os.WriteFile(f, []byte("Vigil-12345678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(gbConfig, "  password: Vigil-12345678\n", "  password_file: "+f+"\n", 1)
	cfg, err := Load(writeConfig(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := cfg.GB28181.ResolvePassword(); err != nil || p != "Vigil-12345678" {
		t.Errorf("password from file %q %v", p, err)
	}
	cfg.GB28181.PasswordFile = filepath.Join(dir, "missing")
	if _, err := cfg.GB28181.ResolvePassword(); err == nil || !strings.Contains(err.Error(), "missing: no such file") {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(f, []byte("\n"), 0o600)
	cfg.GB28181.PasswordFile = f
	if _, err := cfg.GB28181.ResolvePassword(); err == nil || !strings.Contains(err.Error(), "the file is empty") {
		t.Errorf("empty file: %v", err)
	}
}

// The commented gb28181 example in deploy/edge.example.yaml, once
// uncommented, is a valid section of that file: what an installer
// uncomments loads.
func TestGB28181ConfExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/edge.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, block, ok := strings.Cut(string(b), "# gb28181:\n")
	if !ok {
		t.Fatal("deploy/edge.example.yaml has no commented gb28181: section")
	}
	var lines []string
	for _, l := range strings.SplitAfter("# gb28181:\n"+block, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
	}
	p := filepath.Join(t.TempDir(), "gb28181.password")
	if err := os.WriteFile(p, []byte("Vigil-12345678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := doc + strings.ReplaceAll(strings.Join(lines, ""), "/etc/vigil/gb28181.password", p)
	cfg, err := Load(writeConfig(t, body))
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if g := cfg.GB28181; g == nil || len(g.Channels) != 4 || g.ContactHost != "192.168.1.10" {
		t.Fatalf("example: %+v", cfg.GB28181)
	}
}
