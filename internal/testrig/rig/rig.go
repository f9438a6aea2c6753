// Package rig starts a real central and real edges in one test process
// for the end-to-end tests (e2e/): everything it does goes through
// central's and the edge's exported API and their HTTP APIs, as an
// operator's tools would.
//
// It is a package of its own, not part of testrig: central's and the
// edge's own tests import testrig, and a testrig that imported central or
// edge would make an import cycle of them.
package rig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

const (
	// AdminToken is the admin bearer token of every central the rig starts.
	AdminToken = "rig-admin-token-0123456789abcdef"
	// EdgeToken is the token of the edges a test enrols in central's config.
	EdgeToken = "rig-edge-token-0123456789abcdef"
	// csrfHeader is central's CSRF header (any value; a cross-site form
	// cannot set it).
	csrfHeader = "X-Vigil-Request"
	// sessionCookie is central's session cookie.
	sessionCookie = "vigil_session"
)

// Edge is an edge that central's config enrols with EdgeToken.
func Edge(id, site string) central.EdgeConfig {
	return central.EdgeConfig{ID: id, SiteID: site, TokenSHA256: central.HashToken(EdgeToken)}
}

// Central is a running central server.
type Central struct {
	*central.Server
	t   testing.TB
	cfg central.Config
}

// StartCentral starts central with cfg, filling in what a test leaves
// out: the console and edge hub on any free port of 127.0.0.1 (a
// self-signed hub certificate), a temporary data directory and the admin
// token AdminToken. It is closed when the test ends.
func StartCentral(t testing.TB, cfg central.Config) *Central {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.EdgeHub.Listen == "" {
		cfg.EdgeHub.Listen = "127.0.0.1:0"
	}
	if len(cfg.EdgeHub.SelfSignedHosts) == 0 && cfg.EdgeHub.CertFile == "" {
		cfg.EdgeHub.SelfSignedHosts = []string{"127.0.0.1"}
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.AdminTokenSHA256 == "" {
		cfg.AdminTokenSHA256 = central.HashToken(AdminToken)
	}
	c := &Central{t: t, cfg: cfg}
	c.start()
	return c
}

func (c *Central) start() {
	c.t.Helper()
	s, err := central.New(c.cfg, testrig.Logger(c.t))
	if err != nil {
		c.t.Fatalf("central.New: %v", err)
	}
	if err := s.Start(); err != nil {
		c.t.Fatalf("central Start: %v", err)
	}
	c.Server = s
	c.t.Cleanup(func() { s.Close() })
}

// Restart closes central and starts it again on the same addresses and
// data, as an operator restarting the service would: the edges redial
// the hub they know.
func (c *Central) Restart() {
	c.t.Helper()
	c.Stop()
	c.Resume()
}

// Stop closes central; Resume starts it again on the same addresses and
// data.
func (c *Central) Stop() {
	c.t.Helper()
	c.cfg.Listen, c.cfg.EdgeHub.Listen = c.Addr(), c.EdgeAddr()
	if err := c.Close(); err != nil {
		c.t.Errorf("central Close: %v", err)
	}
}

// Resume starts central again after Stop.
func (c *Central) Resume() {
	c.t.Helper()
	c.start()
}

// DataDir is central's data directory.
func (c *Central) DataDir() string { return c.cfg.DataDir }

// HubURL is the edge websocket on central's edge hub (TLS, pinned to Pin).
func (c *Central) HubURL() string { return "wss://" + c.EdgeAddr() + wire.EdgePath }

// Pin is the pin of the edge hub's certificate, as edge.yaml's central.pin.
func (c *Central) Pin() string { return wire.FormatPin(c.EdgePin()) }

// HubYAML is the value of edge.yaml's central.url followed by its
// central.pin line (for configs written as text with the url on its own
// line).
func (c *Central) HubYAML() string { return c.HubURL() + "\n  pin: " + c.Pin() }

// Uplink is an edge's central section for this central with EdgeToken.
func (c *Central) Uplink(backoffMax time.Duration) edge.CentralConfig {
	return edge.CentralConfig{URL: c.HubURL(), Pin: c.Pin(), Token: EdgeToken, BackoffMax: config.Duration(backoffMax)}
}

// URL is the console's URL of path.
func (c *Central) URL(path string) string { return "http://" + c.Addr() + path }

// Do sends a request to central's API with the admin token; body is
// JSON-encoded unless nil.
func (c *Central) Do(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return do(c.t, method, c.URL(path), body, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+AdminToken) })
}

// GetJSON decodes central's answer to GET path (as the admin) into v,
// failing the test on any status but 200.
func (c *Central) GetJSON(path string, v any) {
	c.t.Helper()
	resp, b := c.Do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}

// Edges is central's list of edges (GET /api/v1/edges); nil if central
// does not answer.
func (c *Central) Edges() []central.EdgeStatus {
	req, _ := http.NewRequest(http.MethodGet, c.URL("/api/v1/edges"), nil)
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	var body struct{ Edges []central.EdgeStatus }
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
	}
	return body.Edges
}

// Online reports whether central shows edge id online.
func (c *Central) Online(id string) bool {
	for _, e := range c.Edges() {
		if e.ID == id {
			return e.Online
		}
	}
	return false
}

// WaitEdge waits until central shows edge id online running revision rev
// ("" for any).
func (c *Central) WaitEdge(id, rev string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, e := range c.Edges() {
			if e.ID == id && e.Online && (rev == "" || e.ConfigRevision == rev) {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("central does not show %s online at %q within %v: %+v", id, rev, within, c.Edges())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Alerts are central's newest alerts (GET /api/v1/alerts, up to limit).
func (c *Central) Alerts(limit int) []central.Record {
	c.t.Helper()
	var page struct {
		Alerts []central.Record `json:"alerts"`
	}
	c.GetJSON(fmt.Sprintf("/api/v1/alerts?limit=%d", limit), &page)
	return page.Alerts
}

// Audit is central's audit log (GET /api/v1/audit, up to 1000 entries)
// filtered by query ("action=view&target=…", or "").
func (c *Central) Audit(query string) []audit.Entry {
	c.t.Helper()
	var page struct {
		Entries []audit.Entry `json:"entries"`
	}
	c.GetJSON("/api/v1/audit?limit=1000&"+query, &page)
	return page.Entries
}

// AccessToken is a token for edgeID's local API that central issues to
// its admin token.
func (c *Central) AccessToken(edgeID string) string {
	c.t.Helper()
	resp, b := c.Do(http.MethodPost, "/api/v1/edges/"+url.PathEscape(edgeID)+"/access-tokens", nil)
	return accessToken(c.t, edgeID, resp, b)
}

// EdgeGet is a GET of u on edgeID's local API with a token central issued.
func (c *Central) EdgeGet(edgeID, u string) (*http.Response, error) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+c.AccessToken(edgeID))
	return http.DefaultClient.Do(req)
}

// EdgeJSON decodes edgeID's answer to GET u into v (a token central
// issued), failing on any status but 200.
func (c *Central) EdgeJSON(edgeID, u string, v any) {
	c.t.Helper()
	resp, err := c.EdgeGet(edgeID, u)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("GET %s: %v", u, err)
	}
}

// Browser is a signed-in console user: its session cookie and, for
// writes, the CSRF header.
type Browser struct {
	c      *Central
	User   string
	cookie *http.Cookie
}

// SignIn adds a user with role through central's API (as the admin) and
// logs in as it.
func (c *Central) SignIn(name, role string) *Browser {
	c.t.Helper()
	pw := "password-of-" + name + "-0123456789"
	if resp, b := c.Do(http.MethodPost, "/api/v1/users", map[string]any{"name": name, "role": role, "password": pw, "replace": true}); resp.StatusCode/100 != 2 {
		c.t.Fatalf("add user %s: %s %s", name, resp.Status, b)
	}
	body, _ := json.Marshal(map[string]string{"user": name, "password": pw})
	req, _ := http.NewRequest(http.MethodPost, c.URL("/api/v1/login"), bytes.NewReader(body))
	req.Header.Set(csrfHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("login %s: %v", name, err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && resp.StatusCode == http.StatusOK {
			return &Browser{c: c, User: name, cookie: ck}
		}
	}
	c.t.Fatalf("login %s: %s", name, resp.Status)
	return nil
}

// Do sends a request to central as the signed-in user of the central
// running now; body is JSON-encoded unless nil.
func (b *Browser) Do(method, path string, body any) (*http.Response, []byte) {
	b.c.t.Helper()
	return do(b.c.t, method, b.c.URL(path), body, func(r *http.Request) {
		r.AddCookie(b.cookie)
		if method != http.MethodGet {
			r.Header.Set(csrfHeader, "1")
		}
	})
}

// AccessToken is the token central issues this user for edgeID's local API.
func (b *Browser) AccessToken(edgeID string) string {
	b.c.t.Helper()
	resp, body := b.Do(http.MethodPost, "/api/v1/edges/"+url.PathEscape(edgeID)+"/access-tokens", nil)
	return accessToken(b.c.t, edgeID, resp, body)
}

func accessToken(t testing.TB, edgeID string, resp *http.Response, b []byte) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &tok) != nil || tok.Token == "" {
		t.Fatalf("access token for %s: %s %s", edgeID, resp.Status, b)
	}
	return tok.Token
}

func do(t testing.TB, method, u string, body any, set func(*http.Request)) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	set(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// StartEdge validates cfg and starts an edge node with it, logging to the
// test (unless opts.Log is set); it is closed when the test ends.
func StartEdge(t testing.TB, cfg edge.Config, opts edge.Options) *edge.Node {
	t.Helper()
	// The bursts clip's crossings are 10 s apart: with the default
	// 60 s incident gap they would be one motion alert and its updates;
	// the end-to-end tests follow each crossing as its own alert.
	if cfg.Analysis.Motion.IncidentGap == 0 {
		cfg.Analysis.Motion.IncidentGap = config.Duration(time.Second)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	if opts.Log == nil {
		opts.Log = testrig.Logger(t)
	}
	node, err := edge.Start(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node
}

// Until polls ok every 50 ms until it holds, failing the test after within
// (testrig.Until).
func Until(t testing.TB, what string, within time.Duration, ok func() bool) {
	t.Helper()
	testrig.Until(t, what, within, ok)
}
