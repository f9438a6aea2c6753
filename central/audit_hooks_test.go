package central

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// auditEntries reads the whole log through the API as an admin token.
func auditEntries(t *testing.T, s *Server, query string) []audit.Entry {
	t.Helper()
	var page auditPage
	if resp := getJSON(t, s, "/api/v1/audit?limit=1000&"+query, &page); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/audit?%s: %d", query, resp.StatusCode)
	}
	return page.Entries
}

// wantEntry finds an entry with action, user, role and target ("" for any)
// whose details contain every key=value of want.
func wantEntry(t *testing.T, es []audit.Entry, action, user, role, target string, want map[string]any) audit.Entry {
	t.Helper()
	for _, e := range es {
		if e.Action != action || e.Actor.User != user || e.Actor.Role != role || (target != "" && e.Target != target) {
			continue
		}
		var d map[string]any
		_ = json.Unmarshal(e.Details, &d)
		ok := true
		for k, v := range want {
			if fmt.Sprint(d[k]) != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			return e
		}
	}
	var lines []string
	for _, e := range es {
		lines = append(lines, fmt.Sprintf("  %d %s %s/%s %s %s", e.Seq, e.Action, e.Actor.User, e.Actor.Role, e.Target, e.Details))
	}
	t.Fatalf("no %s entry by %s (%s) on %q with %v; the log:\n%s", action, user, role, target, want, strings.Join(lines, "\n"))
	return audit.Entry{}
}

// A scripted session: every action is in the log with the right user and
// role, in order, and the chain verifies.
func TestAuditScriptedSession(t *testing.T) {
	s := startServer(t)
	s.authAPI.pwParams = cheapParams
	edge := connectEdge(t, s, northID, northToken)
	a := testAlert(northID, "a-1")
	a.Snapshot, a.SnapshotTime = testJPEG(t), a.Time
	edge.sendAlert(a)

	// A guard: a wrong password, then in; opens the alert and its picture, acknowledges, resolves.
	addUser(t, s, "ann", RoleGuard, "password-of-ann")
	if b, resp := login(t, s, "ann", "not-her-password"); b != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	guard, _ := login(t, s, "ann", "password-of-ann")
	for range 3 { // repeated views are recorded once
		if resp, _ := guard.do(http.MethodGet, "/api/v1/alerts/a-1", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("view alert: %d", resp.StatusCode)
		}
	}
	if resp, _ := guard.do(http.MethodGet, "/api/v1/alerts/a-1/snapshot.jpg", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("snapshot: %d", resp.StatusCode)
	}
	if resp, body := guard.do(http.MethodPost, "/api/v1/alerts/a-1/acknowledge", map[string]string{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("acknowledge: %d %s", resp.StatusCode, body)
	}
	if resp, body := guard.do(http.MethodPost, "/api/v1/alerts/a-1/resolve", map[string]string{"note": "cat on the wall"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	if resp, _ := guard.do(http.MethodPost, "/api/v1/evidence/requests", map[string]any{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("guard requests evidence: %d, want 403", resp.StatusCode)
	}
	guard.do(http.MethodPost, "/api/v1/logout", nil)

	// A liaison: searches, requests a range, reads the request, downloads a ready video.
	liaison := signIn(t, s, "pol", RolePolice)
	to := time.Now().UTC().Truncate(time.Second)
	from := to.Add(-5 * time.Minute)
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "camera": {southID + "/cam-1"}}
	if resp, body := liaison.do(http.MethodGet, "/api/v1/evidence/search?"+q.Encode(), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("search: %d %s", resp.StatusCode, body)
	}
	resp, body := liaison.do(http.MethodPost, "/api/v1/evidence/requests", map[string]any{"case_number": "2026-117", "reason": "burglary at the north gate",
		"cameras": []map[string]string{{"edge": southID, "camera": "cam-1"}}, "from": from, "to": to})
	var created EvidenceRequest
	if json.Unmarshal(body, &created); resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("request: %d %s", resp.StatusCode, body)
	}
	ready := readyRequest(t, s, "pol")
	if resp, body := liaison.do(http.MethodGet, "/api/v1/evidence/requests/"+ready.ID+"/items/0/video.mp4", nil); resp.StatusCode != http.StatusOK || string(body) != "mp4 bytes" {
		t.Fatalf("download: %d %q", resp.StatusCode, body)
	}

	// An admin: a user, an enrolment token, a revocation, a backup.
	admin := signIn(t, s, "root", RoleAdmin)
	if resp, body := admin.do(http.MethodPost, "/api/v1/users", map[string]string{"name": "cy", "role": RoleSupervisor, "password": "a long enough password"}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("add user: %d %s", resp.StatusCode, body)
	}
	if resp, body := admin.do(http.MethodPost, "/api/v1/enrolment-tokens", map[string]string{"edge_id": "edge-new", "site_id": siteID}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	if resp, body := admin.do(http.MethodPost, "/api/v1/edges/"+southID+"/revoke", map[string]string{"reason": "stolen"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if resp, _ := admin.do(http.MethodGet, "/api/v1/admin/backup", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %d", resp.StatusCode)
	}

	es := auditEntries(t, s, "")
	order := []uint64{
		wantEntry(t, es, audit.ActionLoginFailed, "ann", "", "", map[string]any{"addr": "127.0.0.1"}).Seq,
		wantEntry(t, es, audit.ActionLogin, "ann", RoleGuard, "", map[string]any{"addr": "127.0.0.1"}).Seq,
		wantEntry(t, es, audit.ActionView, "ann", RoleGuard, "a-1", map[string]any{"what": "alert"}).Seq,
		wantEntry(t, es, audit.ActionView, "ann", RoleGuard, "a-1", map[string]any{"what": "snapshot"}).Seq,
		wantEntry(t, es, audit.ActionWorkflow, "ann", RoleGuard, "a-1", map[string]any{"step": "acknowledge"}).Seq,
		wantEntry(t, es, audit.ActionWorkflow, "ann", RoleGuard, "a-1", map[string]any{"step": "resolve", "note": "cat on the wall"}).Seq,
		wantEntry(t, es, audit.ActionLogout, "ann", RoleGuard, "", nil).Seq,
		wantEntry(t, es, audit.ActionLogin, "pol", RolePolice, "", nil).Seq,
		wantEntry(t, es, audit.ActionSearch, "pol", RolePolice, "", nil).Seq,
		wantEntry(t, es, audit.ActionExport, "pol", RolePolice, created.ID, map[string]any{"case_number": "2026-117"}).Seq,
		wantEntry(t, es, audit.ActionDownload, "pol", RolePolice, ready.ID+"/0", nil).Seq,
		wantEntry(t, es, audit.ActionUserChange, "root", RoleAdmin, "cy", map[string]any{"what": "add", "role": RoleSupervisor}).Seq,
		wantEntry(t, es, audit.ActionConfigChange, "root", RoleAdmin, "edge-new", map[string]any{"what": "enrolment_token"}).Seq,
		wantEntry(t, es, audit.ActionConfigChange, "root", RoleAdmin, southID, map[string]any{"what": "revoke", "reason": "stolen"}).Seq,
		wantEntry(t, es, auditActionBackup, "root", RoleAdmin, "", nil).Seq,
	}
	if !slices.IsSorted(order) {
		t.Errorf("entries out of order: %v", order)
	}
	n := 0
	for _, e := range es {
		if e.Action == audit.ActionView && e.Target == "a-1" && strings.Contains(string(e.Details), `"alert"`) {
			n++
		}
		if strings.Contains(string(e.Details), "password") {
			t.Errorf("seq %d mentions a password: %s", e.Seq, e.Details)
		}
	}
	if n != 1 {
		t.Errorf("the alert viewed 3 times: %d entries, want 1", n)
	}
	// Filters.
	for _, e := range auditEntries(t, s, "user=ann&action=workflow") {
		if e.Actor.User != "ann" || e.Action != audit.ActionWorkflow {
			t.Errorf("filter user=ann&action=workflow: %+v", e)
		}
	}
	if got := auditEntries(t, s, "role=police_liaison&action=export"); len(got) != 1 {
		t.Errorf("filter role and action: %d entries, want 1", len(got))
	}
	// The bearer token acts as admin-token.
	var v auditVerifyOut
	if resp := getJSON(t, s, "/api/v1/audit/verify", &v); resp.StatusCode != http.StatusOK || !v.OK || v.Entries < uint64(len(order)) {
		t.Fatalf("verify: %d %+v", resp.StatusCode, v)
	}
	if n := metricValue(t, s, "vigil_central_audit_entries_total", "action", "workflow"); n != 2 {
		t.Errorf("workflow entries counted: %v", n)
	}
}

// readyRequest stores a request whose one video is at central, as the
// retrieval leaves it (retrieval_test.go fetches real ones from an edge).
func readyRequest(t *testing.T, s *Server, requester string) EvidenceRequest {
	t.Helper()
	dir := filepath.Join(s.cfg.DataDir, "evidence")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ready.mp4"), []byte("mp4 bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r := EvidenceRequest{ID: "ev-ready-" + requester, CaseNumber: "2026-1", Reason: "test", Requester: requester, RequesterRole: RolePolice,
		CreatedAt: now, From: now.Add(-time.Minute), To: now, Status: RetrievalReady, UpdatedAt: now,
		Items: []RetrievalItem{{Edge: northID, Camera: "cam-1", Status: RetrievalReady, Percent: 100, File: "evidence/ready.mp4",
			SHA256: "00", PinsReleased: true, ReadyAt: now}}}
	if err := s.retr.add(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// Without a working audit log an export or a download is refused and
// counted; other requests go on, and the failure is counted.
func TestAuditFailureRefusesCustody(t *testing.T) {
	s := startServer(t)
	liaison := signIn(t, s, "pol", RolePolice)
	r := readyRequest(t, s, "pol")
	s.auditor.log.Close() // every Append fails from now on
	if resp, body := liaison.do(http.MethodGet, "/api/v1/evidence/requests/"+r.ID+"/items/0/video.mp4", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("download without audit: %d %q, want 503", resp.StatusCode, body)
	}
	now := time.Now().UTC()
	if resp, body := liaison.do(http.MethodPost, "/api/v1/evidence/requests", map[string]any{"case_number": "c", "reason": "r",
		"cameras": []map[string]string{{"edge": southID, "camera": "cam-1"}}, "from": now.Add(-time.Minute), "to": now}); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("request without audit: %d %s, want 503", resp.StatusCode, body)
	}
	// …and it was not created: no request exists that the log does not show.
	var list struct {
		Requests []EvidenceRequest `json:"requests"`
	}
	_, body := liaison.do(http.MethodGet, "/api/v1/evidence/requests", nil)
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Requests) != 1 || list.Requests[0].ID != r.ID {
		t.Errorf("requests after a refused one: %+v, want only %s", list.Requests, r.ID)
	}
	if resp, _ := get(t, s, "/api/v1/admin/backup"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("backup without audit: %d, want 503", resp.StatusCode)
	}
	if resp, _ := liaison.do(http.MethodGet, "/api/v1/session", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %d", resp.StatusCode)
	}
	if n := metricValue(t, s, "vigil_central_audit_failures_total", "action", "download"); n != 1 {
		t.Errorf("download failures counted: %v, want 1", n)
	}
	if n := metricValue(t, s, "vigil_central_audit_failures_total", "action", "backup"); n != 1 {
		t.Errorf("backup failures counted: %v, want 1", n)
	}
}

// Editing, deleting or reordering an entry in the store makes
// GET /api/v1/audit/verify fail naming the seq.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	key := func(seq uint64) []byte {
		return binary.BigEndian.AppendUint64([]byte(auditPrefix+"e/"), seq)
	}
	cases := []struct {
		name string
		seq  uint64 // the seq the verifier must name
		kind string
		do   func(txn *badger.Txn, val func(uint64) []byte) error
	}{
		{"edit", 3, audit.BreakEdited, func(txn *badger.Txn, val func(uint64) []byte) error {
			v := strings.Replace(string(val(3)), `"target":"t-1"`, `"target":"t-9"`, 1)
			return txn.Set(key(3), []byte(v))
		}},
		{"delete", 4, audit.BreakMissing, func(txn *badger.Txn, _ func(uint64) []byte) error {
			return txn.Delete(key(4))
		}},
		{"reorder", 2, audit.BreakReordered, func(txn *badger.Txn, val func(uint64) []byte) error {
			a, b := val(2), val(3)
			if err := txn.Set(key(2), b); err != nil {
				return err
			}
			return txn.Set(key(3), a)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startServer(t)
			signIn(t, s, "pol", RolePolice) // seq 1
			for i := range 5 {              // seq 2..6
				s.auditor.audit(&http.Request{RemoteAddr: "127.0.0.1:1"}, audit.ActionSearch, fmt.Sprintf("t-%d", i), map[string]any{"i": i})
			}
			var v auditVerifyOut
			if resp := getJSON(t, s, "/api/v1/audit/verify", &v); resp.StatusCode != http.StatusOK || !v.OK {
				t.Fatalf("verify before: %d %+v", resp.StatusCode, v)
			}
			err := s.store.db.Update(func(txn *badger.Txn) error {
				val := func(seq uint64) []byte {
					it, err := txn.Get(key(seq))
					if err != nil {
						t.Fatalf("seq %d: %v", seq, err)
					}
					b, _ := it.ValueCopy(nil)
					return b
				}
				return c.do(txn, val)
			})
			if err != nil {
				t.Fatal(err)
			}
			resp := getJSON(t, s, "/api/v1/audit/verify", &v)
			if resp.StatusCode != http.StatusConflict || v.OK || v.Break == nil || v.Break.Seq != c.seq || v.Break.Kind != c.kind {
				t.Fatalf("verify after %s: %d %+v %+v, want 409 naming seq %d (%s)", c.name, resp.StatusCode, v, v.Break, c.seq, c.kind)
			}
			if !strings.Contains(v.Error, fmt.Sprintf("seq %d", c.seq)) {
				t.Errorf("error %q does not name seq %d", v.Error, c.seq)
			}
		})
	}
}

// Supervisors and admins read the log; only admins verify it.
func TestAuditRoles(t *testing.T) {
	s := startServer(t)
	for _, role := range Roles {
		b := signIn(t, s, "u-"+strings.ReplaceAll(role, "_", "-"), role)
		for path, allowed := range map[string][]string{"/api/v1/audit": {RoleSupervisor, RoleAdmin}, "/api/v1/audit/verify": {RoleAdmin}} {
			resp, body := b.do(http.MethodGet, path, nil)
			want := http.StatusForbidden
			if slices.Contains(allowed, role) {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Errorf("%s GET %s: %d %s, want %d", role, path, resp.StatusCode, body, want)
			}
		}
	}
	for _, path := range []string{"/api/v1/audit", "/api/v1/audit/verify"} {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("no session GET %s: %d, want 401", path, resp.StatusCode)
		}
	}
}

// The log survives a restart and `vigil central audit verify` (a stopped
// central) checks it.
func TestAuditStoppedVerify(t *testing.T) {
	dir := t.TempDir()
	s, err := New(testConfig(dir), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	signIn(t, s, "pol", RolePolice)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyAuditStopped(t.Context(), dir)
	if err != nil || rep.Entries != 1 {
		t.Fatalf("verify stopped: %+v %v", rep, err)
	}
	if _, err := VerifyAuditStopped(t.Context(), t.TempDir()); err == nil {
		t.Fatal("verify of an empty dir: no error")
	}
}
