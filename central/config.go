package central

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/vigil-perimeter/vigil/internal/config"
)

// Config is central's YAML configuration (central.yaml).
type Config struct {
	Listen  string       `yaml:"listen"`   // host:port to bind, e.g. "127.0.0.1:8080"
	DataDir string       `yaml:"data_dir"` // Badger directory for alerts
	Edges   []EdgeConfig `yaml:"edges"`
}

// EdgeConfig is one enrolled edge box.
type EdgeConfig struct {
	ID     string `yaml:"id"`
	SiteID string `yaml:"site_id"`
	// TokenSHA256 is the hex SHA-256 of the edge's bearer token; the token
	// itself is never stored at central, so a copied config cannot impersonate
	// an edge.
	TokenSHA256 string `yaml:"token_sha256"`
}

// LoadConfig reads and validates central's config file; the error names the
// file, line and field of every problem.
func LoadConfig(path string) (Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// HashToken returns the hex SHA-256 of an edge bearer token, the form kept in
// EdgeConfig.TokenSHA256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Validate reports every problem with the config, naming fields as written in
// the file (e.g. "edges[1].token_sha256").
func (c *Config) Validate() []config.FieldError {
	var out []config.FieldError
	add := func(field, format string, args ...any) {
		out = append(out, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Listen == "" {
		add("listen", "is required (host:port, e.g. 127.0.0.1:8080)")
	} else if err := checkHostPort(c.Listen); err != nil {
		add("listen", "%v", err)
	}
	if c.DataDir == "" {
		add("data_dir", "is required")
	}
	ids := map[string]int{}
	tokens := map[string]int{}
	for i, e := range c.Edges {
		f := func(name string) string { return "edges[" + strconv.Itoa(i) + "]." + name }
		switch prev, dup := ids[e.ID]; {
		case e.ID == "":
			add(f("id"), "is required")
		case dup:
			add(f("id"), "%q is already used by edges[%d]", e.ID, prev)
		default:
			ids[e.ID] = i
		}
		sum, err := hex.DecodeString(e.TokenSHA256)
		switch {
		case e.TokenSHA256 == "":
			add(f("token_sha256"), "is required (hex SHA-256 of the edge's token)")
		case err != nil || len(sum) != sha256.Size:
			add(f("token_sha256"), "must be 64 hex characters (the SHA-256 of the token, not the token)")
		default:
			// Two edges sharing a token could not be told apart at login.
			key := string(sum)
			if prev, dup := tokens[key]; dup {
				add(f("token_sha256"), "is the same as edges[%d].token_sha256; every edge needs its own token", prev)
			} else {
				tokens[key] = i
			}
		}
	}
	return out
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number 0..65535", port)
	}
	return nil
}

// validationError joins field errors for callers that build a Config in code
// rather than loading a file.
func validationError(fes []config.FieldError) error {
	errs := make([]error, len(fes))
	for i, fe := range fes {
		errs[i] = fe
	}
	return fmt.Errorf("central: invalid config: %w", errors.Join(errs...))
}
