package central

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const townshipYAML = `listen: 127.0.0.1:8080
data_dir: /var/lib/vigil
edge_hub:
  listen: 0.0.0.0:8443
  self_signed_hosts: [central.local]
  token_ttl: 1h
township:
  id: lotus
  villages:
    - id: north
      zones:
        - id: wall
          entrances:
            - id: gate-a
              cameras:
                - {id: cam-1}
                - {id: cam-2}
              gates:
                - {id: barrier}
`

// TestConfigErrorsNameYAMLPathAndType: central.yaml's errors name the
// file, line, the path as written (cameras/gates, not Go's names or an
// internal "devices" list) and the wanted type.
func TestConfigErrorsNameYAMLPathAndType(t *testing.T) {
	tests := []struct{ name, from, to, want string }{
		{"duplicate camera", "{id: cam-2}", "{id: cam-1}", `central.yaml:17: township.villages[0].zones[0].entrances[0].cameras[1].id: "cam-1" is used twice in this entrance`},
		{"gate with a camera's id", "{id: barrier}", "{id: cam-2}", `central.yaml:19: township.villages[0].zones[0].entrances[0].gates[0].id: "cam-2" is used twice in this entrance`},
		{"string for a duration", "token_ttl: 1h", "token_ttl: an hour", `central.yaml:6: edge_hub.token_ttl: "an hour" is not a duration`},
		{"list for a mapping", "  listen: 0.0.0.0:8443\n  self_signed_hosts: [central.local]\n  token_ttl: 1h", "  - 0.0.0.0:8443", "central.yaml:4: edge_hub: want a mapping (key: value lines), got a list"},
		{"mapping for a list", "      zones:\n", "      zones:\n        id: x\n      zonez:\n", "central.yaml:12: township.villages[0].zones: want a list, got a mapping"},
		{"text for a list", "self_signed_hosts: [central.local]", "self_signed_hosts: {a: b}", "central.yaml:5: edge_hub.self_signed_hosts: want a list, got a mapping"},
		{"misspelt key", "  self_signed_hosts:", "  self_signed_host:", "central.yaml:5: edge_hub.self_signed_host: unknown field; did you mean self_signed_hosts?"},
		{"unknown store", "data_dir: /var/lib/vigil\n", "data_dir: /var/lib/vigil\nstore: mysql://db/vigil\n", `central.yaml:3: store: must be "badger" or a PostgreSQL connection string`},
		{"bad postgres url, password kept out", "data_dir: /var/lib/vigil\n", "data_dir: /var/lib/vigil\nstore: postgres://vigil:s3cret@db:port/vigil\n", `central.yaml:3: store: not a PostgreSQL connection string`},
		{"unclosed quote", "data_dir: /var/lib/vigil", `data_dir: "/var/lib/vigil`, `central.yaml:2: data_dir: unclosed " quote`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(townshipYAML, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			path := filepath.Join(t.TempDir(), "central.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(townshipYAML, tc.from, tc.to, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			msg := strings.ReplaceAll(err.Error(), path, "central.yaml")
			t.Log(msg)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") || len(msg) >= 300 {
				t.Errorf("error is not one short line: %q", msg)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error shows the database password: %q", msg)
			}
			if strings.Contains(msg, "devices") || strings.Contains(msg, "Go ") || strings.Contains(msg, "Config") {
				t.Errorf("error names Go's structure: %q", msg)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "central.yaml")
	os.WriteFile(path, []byte(townshipYAML), 0o600)
	if _, err := LoadConfig(path); err != nil {
		t.Fatalf("fixture: %v", err)
	}
}
