package central

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHashToken(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2.
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken(abc) = %s", got)
	}
}

func TestLoadConfig(t *testing.T) {
	north := HashToken(northToken)
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error; none means success
	}{
		{"ok", "listen: 127.0.0.1:8080\ndata_dir: /var/lib/vigil\nedges:\n  - id: gate-north\n    site_id: v7\n    token_sha256: " + north + "\n", nil},
		{"bad listen and missing data_dir", "listen: localhost\nedges: []\n",
			[]string{"central.yaml:1: listen:", "central.yaml: data_dir: is required"}},
		{"bad port", "listen: 127.0.0.1:http\ndata_dir: d\n", []string{"central.yaml:1: listen: port"}},
		{"duplicate and empty ids", "listen: :8080\ndata_dir: d\nedges:\n  - id: a\n    token_sha256: " + north +
			"\n  - id: a\n    token_sha256: " + HashToken("x") + "\n  - token_sha256: " + HashToken("y") + "\n",
			[]string{"central.yaml:6: edges[1].id: \"a\" is already used by edges[0]", "edges[2].id: is required"}},
		{"token not a hash", "listen: :8080\ndata_dir: d\nedges:\n  - id: a\n    token_sha256: secret\n",
			[]string{"central.yaml:5: edges[0].token_sha256: must be 64 hex characters"}},
		{"shared token", "listen: :8080\ndata_dir: d\nedges:\n  - id: a\n    token_sha256: " + north +
			"\n  - id: b\n    token_sha256: " + strings.ToUpper(north) + "\n",
			[]string{"edges[1].token_sha256: is the same as edges[0].token_sha256"}},
		{"unknown field", "listen: :8080\ndata_dir: d\nedgez: []\n", []string{"central.yaml:3:", "edgez"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "central.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Listen != "127.0.0.1:8080" || len(cfg.Edges) != 1 || cfg.Edges[0].SiteID != "v7" {
					t.Fatalf("cfg = %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			msg := strings.ReplaceAll(err.Error(), path, "central.yaml")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{Listen: "nope"}, nil)
	if err == nil || !strings.Contains(err.Error(), "data_dir") || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("New with bad config: %v", err)
	}
}

func TestEdgeHubAndAdminValidation(t *testing.T) {
	tests := []struct {
		name string
		mut  func(c *Config)
		want string
	}{
		{"cert without key", func(c *Config) { c.EdgeHub = EdgeHubConfig{Listen: ":8443", CertFile: "c.pem"} }, "edge_hub.key_file"},
		{"no certificate at all", func(c *Config) { c.EdgeHub = EdgeHubConfig{Listen: ":8443"} }, "edge_hub.cert_file"},
		{"both", func(c *Config) {
			c.EdgeHub = EdgeHubConfig{Listen: ":8443", CertFile: "c", KeyFile: "k", SelfSignedHosts: []string{"h"}}
		}, "edge_hub.self_signed_hosts"},
		{"certificate without listener", func(c *Config) { c.EdgeHub = EdgeHubConfig{SelfSignedHosts: []string{"h"}} }, "edge_hub.listen"},
		{"bad port", func(c *Config) { c.EdgeHub.Listen = "127.0.0.1:x" }, "edge_hub.listen"},
		{"ttl too long", func(c *Config) { c.EdgeHub.TokenTTL = 1e18 }, "edge_hub.token_ttl"},
		{"admin token not a hash", func(c *Config) { c.AdminTokenSHA256 = "secret" }, "admin_token_sha256"},
		{"township id", func(c *Config) { c.Township = &TownshipConfig{ID: "Bad Name"} }, "township.id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			tc.mut(&cfg)
			msgs := ""
			for _, fe := range cfg.Validate() {
				msgs += fe.Error() + "\n"
			}
			if !strings.Contains(msgs, tc.want) {
				t.Fatalf("validation %q lacks %q", msgs, tc.want)
			}
		})
	}
	ok := testConfig(t.TempDir())
	if fes := ok.Validate(); len(fes) != 0 {
		t.Fatalf("test config invalid: %v", fes)
	}
}

// retrieval: in central.yaml tunes the evidence workers; what is left out
// takes today's defaults, and a value out of bounds is named by its key
// and line.
func TestRetrievalConfig(t *testing.T) {
	const head = "listen: 127.0.0.1:8080\ndata_dir: /var/lib/vigil\n"
	tests := []struct {
		name, yaml string
		want       retrievalSettings
		err        []string // substrings of the error; none means success
	}{
		{name: "defaults", yaml: head,
			want: retrievalSettings{chunkSize: 4 << 20, poll: time.Second, retry: time.Second}},
		{name: "all set", yaml: head + "retrieval:\n  chunk_size: 65536\n  poll: 250ms\n  retry: 2s\n",
			want: retrievalSettings{chunkSize: 64 << 10, poll: 250 * time.Millisecond, retry: 2 * time.Second}},
		{name: "some set", yaml: head + "retrieval:\n  retry: 100ms\n",
			want: retrievalSettings{chunkSize: 4 << 20, poll: time.Second, retry: 100 * time.Millisecond}},
		{name: "chunk too small", yaml: head + "retrieval:\n  chunk_size: 100\n",
			err: []string{"central.yaml:4: retrieval.chunk_size: must be between 4096 and 16777216 bytes"}},
		{name: "chunk too large", yaml: head + "retrieval:\n  chunk_size: 33554432\n",
			err: []string{"central.yaml:4: retrieval.chunk_size: must be between"}},
		{name: "negative chunk", yaml: head + "retrieval:\n  chunk_size: -1\n",
			err: []string{"retrieval.chunk_size: must be between"}},
		{name: "pauses out of bounds", yaml: head + "retrieval:\n  poll: 1ms\n  retry: 1h\n",
			err: []string{"central.yaml:4: retrieval.poll: must be between 10ms and 5m0s (default 1s)",
				"central.yaml:5: retrieval.retry: must be between 10ms and 5m0s"}},
		{name: "not a duration", yaml: head + "retrieval:\n  poll: often\n",
			err: []string{"central.yaml:4: retrieval.poll:", "not a duration"}},
		{name: "misspelt key", yaml: head + "retrieval:\n  chunksize: 65536\n",
			err: []string{"central.yaml:4: retrieval.chunksize: unknown field; did you mean chunk_size?"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "central.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := cfg.Retrieval.settings(nil); got.chunkSize != tc.want.chunkSize || got.poll != tc.want.poll || got.retry != tc.want.retry {
					t.Errorf("settings %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.err)
			}
			msg := strings.ReplaceAll(err.Error(), path, "central.yaml")
			for _, w := range tc.err {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}
