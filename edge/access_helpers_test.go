package edge_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/wire"
)

// testEdgeID is the edge ID the tests' nodes use.
const testEdgeID = "gate-1"

// accessToken is an access token for edgeID as central would sign it
// (with the key the test nodes trust, export_test.go).
func accessToken(t testing.TB, edgeID, user, role string) string {
	t.Helper()
	now := time.Now().UTC()
	tok, err := wire.SignAccessToken(edge.TestAccessKey, wire.AccessClaims{EdgeID: edgeID, User: user, Role: role,
		Issued: now, Expires: now.Add(10 * time.Minute), Nonce: "test-" + user + "-" + role})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiGet is http.Get on a test node's local API as an admin of gate-1.
func apiGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	tok, err := wire.SignAccessToken(edge.TestAccessKey, wire.AccessClaims{EdgeID: testEdgeID, User: "test-admin", Role: "admin",
		Issued: now, Expires: now.Add(10 * time.Minute), Nonce: "test"})
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return http.DefaultClient.Do(req)
}
