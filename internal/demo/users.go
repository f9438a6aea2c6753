package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/vigil-perimeter/vigil/central"
)

// DemoUser is one generated console account in credentials.json.
type DemoUser struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// ensureUsers gives the demo one console account per role, named after the
// role, with a generated password (there is no default password). They are
// kept in credentials.json so they survive restarts, and central.yaml
// declares them with argon2id hashes.
func ensureUsers(c *Credentials, path string) error {
	changed := false
	if c.Users == nil {
		c.Users = map[string]DemoUser{}
	}
	for _, role := range central.Roles {
		if u, ok := c.Users[role]; ok && u.User != "" && central.ValidatePassword(u.Password) == nil {
			continue
		}
		c.Users[role] = DemoUser{User: role, Password: central.RandomPassword()}
		changed = true
	}
	if !changed {
		return nil
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// userConfigs declares the demo's accounts in central.yaml.
func userConfigs(c Credentials) []central.UserConfig {
	var out []central.UserConfig
	for _, role := range central.Roles {
		if u, ok := c.Users[role]; ok {
			out = append(out, central.UserConfig{Name: u.User, Role: role, PasswordHash: central.HashPassword(u.Password)})
		}
	}
	return out
}

// printUsers shows the console accounts (also in credentials.json).
func printUsers(w io.Writer, c Credentials, path string) {
	fmt.Fprintf(w, "Vigil demo: console accounts (user / password; also in %s):\n", path)
	for _, role := range central.Roles {
		if u, ok := c.Users[role]; ok {
			fmt.Fprintf(w, "  %-15s %-15s %s\n", role, u.User, u.Password)
		}
	}
}
