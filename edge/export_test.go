package edge

import (
	"crypto/ed25519"
	"crypto/rand"
)

// SNTPResponder is sntpResponder for the external tests (selftest_test.go).
var SNTPResponder = sntpResponder

// TestAccessKey signs access tokens that every node in this package's
// tests accepts, as if central had signed them (access_helpers_test.go).
var TestAccessKey = func() ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	testAccessKeys = []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}
	return priv
}()

// APIRoute is one row of the local API's table, for the route walk.
type APIRoute struct {
	Pattern, Audit string
	Auth           string // token, open, signed, setup
	Roles          []string
}

// APIRoutes is the node's route table.
func (n *Node) APIRoutes() []APIRoute {
	var out []APIRoute
	for _, r := range n.apiRoutes() {
		out = append(out, APIRoute{Pattern: r.Pattern, Audit: r.Audit, Auth: [...]string{"token", "open", "signed", "setup"}[r.Auth], Roles: r.Roles})
	}
	return out
}
