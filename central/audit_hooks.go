package central

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vigil-perimeter/vigil/internal/repeats"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// The audit log (central/audit) lives in the store's database under
// auditPrefix. Every login, failed login, logout, alert view, workflow
// step, configuration change, user change, backup and evidence search,
// request and download is an entry naming the signed-in user and role
// (the admin bearer token acts as "admin-token", role admin).
//
// Most entries are written by the route table's audit rules (routes.go):
// after the handler answered with success (a failed login after its 401),
// or, for a backup, before any byte leaves central. The evidence handlers
// (evidence_api.go, search.go) call audit themselves; an export or a
// download is refused when its entry cannot be written (auditOrRefuse),
// because the bundle's chain of custody is that log.
//
// A write that fails is never silent: it is logged as an error and
// counted in vigil_central_audit_failures_total{action}.
//
// Views repeat (a console polls, a card shows its snapshot again): the
// same user viewing the same thing with the same details is recorded once
// per auditViewWindow.

const (
	auditPrefix     = "audit/"
	auditViewWindow = 10 * time.Minute
	auditTimeout    = 10 * time.Second
	auditMaxString  = 256 // runes of a detail string kept when details are too long
	auditAnonymous  = "anonymous"
	// Actions beyond central/audit's constants.
	auditActionBackup = "backup"
	auditActionEnrol  = "enrol" // an edge redeemed an enrolment token (enrol.go)
	auditActionShare  = "share" // an evidence request was shared (evidence_api.go)
	auditRoleEdge     = "edge"  // the role in an edge's own entries ("edge:<id>")
)

// auditor is the audit component's writing side: it records what
// requests do (the route table's rules, serveAudited, and the handlers
// that record their own entries) and what edges report, and counts what
// it could not write. Reading and verifying the log is auditAPI's.
type auditor struct {
	log      *audit.Log
	failures *prometheus.CounterVec
	entries  *prometheus.CounterVec
	addrs    clientAddrs     // the client's address goes in every entry
	users    userLookup      // a login's role
	logger   *slog.Logger    // failures to write are logged here
	views    *repeats.Window // views recorded in the last auditViewWindow
}

// openAuditor opens the log in the store's database, keyed by the audit
// key (made on first start; a log from before it gets its MACs now if its
// chain verifies), in db (whose disk floor is floor), or in PostgreSQL
// when the replicas share pg (one chain for all: every replica must load
// the same audit_key_file). The caller registers its metrics
// (collectors).
func openAuditor(db *badger.DB, floor *kv.Floor, pg *PGStore, cfg Config, users userLookup, log *slog.Logger) (*auditor, error) {
	key, err := loadAuditKey(cfg, log)
	if err != nil {
		return nil, err
	}
	var l *audit.Log
	if pg != nil {
		ctx, cancel := pgCtx()
		l, err = audit.OpenPG(ctx, pg.pool, audit.Options{Log: log, Key: key})
		if err == nil {
			err = sameAuditKey(ctx, l, key)
		}
		cancel()
	} else {
		l, err = audit.Open(db, auditPrefix, audit.Options{Log: log, Floor: floor, Key: key})
	}
	if err != nil {
		return nil, fmt.Errorf("central: audit log: %w", err)
	}
	a := &auditor{log: l, views: repeats.New(auditViewWindow), addrs: newClientAddrs(cfg.TrustedProxies), users: users, logger: log,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_central_audit_failures_total",
			Help: "Audit entries that could not be written, by action (exports and downloads were refused).",
		}, []string{"action"}),
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_central_audit_entries_total",
			Help: "Audit entries written, by action.",
		}, []string{"action"}),
	}
	for _, act := range []string{audit.ActionLogin, audit.ActionLoginFailed, audit.ActionLogout, audit.ActionSearch,
		audit.ActionView, audit.ActionExport, audit.ActionDownload, audit.ActionWorkflow, audit.ActionConfigChange,
		audit.ActionUserChange, auditActionBackup, auditActionEnrol, auditActionShare, actionBookmark} {
		a.failures.WithLabelValues(act)
		a.entries.WithLabelValues(act)
	}
	return a, nil
}

// sameAuditKey refuses a replica whose audit key is not the one the
// shared log was begun with (its first entry's MAC): its entries would
// verify as forged.
func sameAuditKey(ctx context.Context, l *audit.Log, key []byte) error {
	e, err := l.Get(ctx, 1)
	if err != nil || e.MAC == "" {
		return nil // an empty log, or one from before keys
	}
	if subtle.ConstantTimeCompare([]byte(e.MAC), []byte(audit.ComputeMAC(key, e.Hash))) != 1 {
		l.Close()
		return errors.New("the shared audit log was begun with another audit key: every central on this database must load the same audit_key_file")
	}
	return nil
}

// collectors are the auditor's metrics.
func (a *auditor) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.failures, a.entries}
}

// audit records action on target by the request's principal. details is
// anything that marshals to a JSON object (or nil); the client's address
// is added. It returns the error after logging and counting it.
func (a *auditor) audit(r *http.Request, action, target string, details any) error {
	act := audit.Actor{User: auditAnonymous}
	if p := principalOf(r); p != nil {
		act = audit.Actor{User: p.Name, Role: p.Role}
	}
	return a.auditAs(r, act, action, target, details)
}

// auditOrRefuse records a custody action (export, download, backup) and
// answers 503 if it cannot: nothing leaves central off the record.
func (a *auditor) auditOrRefuse(w http.ResponseWriter, r *http.Request, action, target string, details any) bool {
	if err := a.audit(r, action, target, details); err != nil {
		writeError(w, http.StatusServiceUnavailable, "", "the audit log cannot record this "+action+"; refused (chain of custody)")
		return false
	}
	return true
}

// auditAs records an entry for an explicit actor (a login, before there
// is a session).
func (a *auditor) auditAs(r *http.Request, act audit.Actor, action, target string, details any) error {
	if a == nil {
		return errors.New("central: no audit log")
	}
	d, err := auditDetails(details, a.addrs.text(r)) // the browser, behind a trusted proxy
	if err == nil && action == audit.ActionView && !a.firstView(act, target, d) {
		return nil
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
		_, err = a.log.Append(ctx, audit.Entry{Actor: act, Action: action, Target: target, Details: d})
		cancel()
	}
	if err != nil {
		a.failures.WithLabelValues(action).Inc()
		a.logger.Error("audit entry not written", "action", action, "target", target, "user", act.User, "role", act.Role, "err", err)
		if action == audit.ActionView {
			a.forgetView(act, target, d)
		}
		return err
	}
	a.entries.WithLabelValues(action).Inc()
	return nil
}

func viewKey(act audit.Actor, target string, d []byte) string {
	return act.User + "\x00" + act.Role + "\x00" + target + "\x00" + string(d)
}

// firstView reports whether this view is not a repeat within auditViewWindow.
func (a *auditor) firstView(act audit.Actor, target string, d []byte) bool {
	return a.views.First(viewKey(act, target, d), time.Now())
}

func (a *auditor) forgetView(act audit.Actor, target string, d []byte) {
	a.views.Forget(viewKey(act, target, d))
}

// auditDetails encodes details as a JSON object with the client address
// ("addr") added, shortening long strings (then hashing the whole) so an
// entry stays within audit.MaxDetails.
func auditDetails(details any, addr string) (json.RawMessage, error) {
	m := map[string]any{}
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return nil, err
		}
		if string(b) != "null" {
			if err := json.Unmarshal(b, &m); err != nil {
				m = map[string]any{"value": json.RawMessage(b)}
			}
		}
	}
	if addr != "" {
		m["addr"] = addr
	}
	if len(m) == 0 {
		return nil, nil
	}
	b, err := marshalNoEscape(m)
	if err != nil || len(b) <= audit.MaxDetails {
		return b, err
	}
	sum := sha256.Sum256(b)
	for k, v := range m {
		if s, ok := v.(string); ok && utf8.RuneCountInString(s) > auditMaxString {
			m[k] = string([]rune(s)[:auditMaxString]) + "…"
		}
	}
	m["truncated_sha256"] = hex.EncodeToString(sum[:])
	if b, err = marshalNoEscape(m); err != nil || len(b) <= audit.MaxDetails {
		return b, err
	}
	return marshalNoEscape(map[string]any{"addr": addr, "truncated_sha256": hex.EncodeToString(sum[:])})
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// auditRoute says how a route is recorded.
type auditRoute struct {
	action string
	before bool // record before the handler runs; refuse if it cannot be written
	soft   bool // record before the handler runs, serve it anyway (websockets: not wrapped)
	// entry returns the target and details; ok false records nothing.
	// status is the handler's answer (0 when before); body is the request body.
	entry func(r *http.Request, status int, body []byte) (target string, details any, ok bool)
}

func pathTarget(names ...string) func(r *http.Request) string {
	return func(r *http.Request) string {
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = r.PathValue(n)
		}
		return strings.Join(parts, "/")
	}
}

// viewOf records a successful view of what the path names.
func viewOf(what string, target func(*http.Request) string, query ...string) auditRoute {
	return auditRoute{action: audit.ActionView, entry: func(r *http.Request, status int, _ []byte) (string, any, bool) {
		d := map[string]any{"what": what}
		for _, q := range query {
			if v := r.URL.Query().Get(q); v != "" {
				d[q] = v
			}
		}
		return target(r), d, ok2xx(status)
	}}
}

func ok2xx(status int) bool { return status >= 200 && status < 300 }

// serveAudited serves r with mux and records it in the audit log as
// the route table's audit rule (and the login rules) say. pattern is the route's.
func (a *auditor) serveAudited(mux http.Handler, pattern string, w http.ResponseWriter, r *http.Request) {
	if pattern == "POST /api/v1/login" {
		a.serveLoginAudited(mux, w, r)
		return
	}
	ar := routeTable[pattern].audit
	if ar.action == "" {
		mux.ServeHTTP(w, r)
		return
	}
	setPathValues(pattern, r) // for a rule that runs before the mux (soft, before)
	if ar.soft {
		if target, d, ok := ar.entry(r, 0, nil); ok {
			_ = a.audit(r, ar.action, target, d)
		}
		mux.ServeHTTP(w, r)
		return
	}
	if ar.before {
		target, d, _ := ar.entry(r, 0, nil)
		if !a.auditOrRefuse(w, r, ar.action, target, d) {
			return
		}
		mux.ServeHTTP(w, r)
		return
	}
	var body []byte
	if r.Method != http.MethodGet && r.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sw := &statusWriter{ResponseWriter: w}
	mux.ServeHTTP(sw, r)
	if target, d, ok := ar.entry(r, sw.status(), body); ok {
		_ = a.audit(r, ar.action, target, d)
	}
}

// serveLoginAudited records a login (200) or a failed one (401, or 429
// once a minute per name and address while rate-limited).
func (a *auditor) serveLoginAudited(mux http.Handler, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w}
	mux.ServeHTTP(sw, r)
	var b struct {
		User string `json:"user"`
	}
	_ = json.Unmarshal(body, &b)
	name := strings.ToLower(strings.TrimSpace(b.User))
	if name == "" || len(name) > 64 {
		return
	}
	switch sw.status() {
	case http.StatusOK:
		role := ""
		if u, ok := a.users.get(name); ok {
			role = u.Role
		}
		_ = a.auditAs(r, audit.Actor{User: name, Role: role}, audit.ActionLogin, "", nil)
	case http.StatusUnauthorized:
		_ = a.auditAs(r, audit.Actor{User: name}, audit.ActionLoginFailed, "", map[string]any{"reason": "wrong credentials"})
	case http.StatusTooManyRequests:
		if a.firstView(audit.Actor{User: name}, "login_rate_limited", []byte(a.addrs.text(r))) {
			_ = a.auditAs(r, audit.Actor{User: name}, audit.ActionLoginFailed, "", map[string]any{"reason": "rate limited"})
		}
	}
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.code == 0 {
			w.code = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (websockets).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// auditPage is the body of GET /api/v1/audit.
type auditPage struct {
	Entries []audit.Entry `json:"entries"`
	Next    uint64        `json:"next"` // after= for the following page (0: none)
	Head    uint64        `json:"head"` // the newest seq
}

// auditAPI is the audit component's reading side: the log's entries and
// its verification (chain, MACs, and the checkpoints edges hold). New
// (server.go) builds it.
type auditAPI struct {
	log         *audit.Log
	checkpoints *checkpointer // signs checkpoints and asks edges for theirs (audit_checkpoint.go)
	logger      *slog.Logger
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// handleAudit serves GET /api/v1/audit?from=&to=&user=&role=&action=&target=&after=&limit=
// (supervisor, admin): entries in seq order; page on with after=next.
func (a *auditAPI) handleAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{User: q.Get("user"), Role: q.Get("role"), Action: q.Get("action"), Target: q.Get("target")}
	var ok bool
	if f.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if f.To, ok = queryTime(w, r, "to"); !ok {
		return
	}
	if f.After, ok = queryUint(w, r, "after", 0, 0, 1<<62); !ok {
		return
	}
	limit, ok := queryUint(w, r, "limit", 100, 1, 1000)
	if !ok {
		return
	}
	f.Limit = int(limit)
	es, err := a.log.List(r.Context(), f)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	head, _ := a.log.Head()
	page := auditPage{Entries: es, Head: head}
	if page.Entries == nil {
		page.Entries = []audit.Entry{}
	}
	if len(es) == f.Limit {
		page.Next = es[len(es)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
}

// AuditVerification is the body of GET /api/v1/audit/verify and what
// `vigil central audit verify` prints: the chain, every MAC, and the
// checkpoints held by edges (asked over their connections, or read from
// files copied from them).
type AuditVerification struct {
	OK      bool        `json:"ok"`
	Entries uint64      `json:"entries"`
	Last    uint64      `json:"last"`
	Head    string      `json:"head"`
	Break   *auditBreak `json:"break,omitempty"`
	Error   string      `json:"error,omitempty"`
	// MACs: every entry's MAC was checked with the audit key.
	MACs bool `json:"macs"`
	// Checkpoint is the latest checkpoint this central signed (running
	// central only).
	Checkpoint *wire.AuditCheckpoint `json:"checkpoint,omitempty"`
	// Checkpoints are the checks of the checkpoints edges hold: ok,
	// mismatch, truncated, forged, none or unreachable.
	Checkpoints []AuditCheckpointCheck `json:"checkpoints"`
}

type auditVerifyOut = AuditVerification

// auditBreak is where the chain is broken (audit.BreakError).
type auditBreak struct {
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// handleAuditVerify serves GET /api/v1/audit/verify (admin): the whole
// chain and every MAC checked, and every edge asked for the checkpoint it
// holds; 200 with ok true, or 409 naming the first broken seq (a
// truncation or rewrite a checkpoint shows, when the chain holds).
func (a *auditAPI) handleAuditVerify(w http.ResponseWriter, r *http.Request) {
	out, err := verifyAudit(r.Context(), a.log)
	if err != nil && out.Break == nil {
		a.internalError(w, r, err)
		return
	}
	out.Checkpoint = a.checkpoints.latestSigned()
	out.Checkpoints = a.checkpoints.askAll(r.Context())
	out.applyCheckpoints(out.Checkpoints)
	for _, c := range out.Checkpoints {
		if c.failed() {
			a.logger.Error("audit checkpoint check failed", "edge", c.Edge, "status", c.Status, "detail", c.Summary())
		}
	}
	status := http.StatusOK
	if !out.OK {
		status = http.StatusConflict
		a.logger.Error("audit log verification failed", "seq", out.Break.Seq, "kind", out.Break.Kind, "detail", out.Break.Detail)
	}
	writeJSON(w, status, out)
}

func verifyAudit(ctx context.Context, l *audit.Log) (auditVerifyOut, error) {
	rep, err := l.Verify(ctx)
	out := auditVerifyOut{OK: err == nil, Entries: rep.Entries, Last: rep.Last, Head: rep.Head, MACs: rep.MACs,
		Checkpoints: []AuditCheckpointCheck{}}
	var be *audit.BreakError
	if errors.As(err, &be) {
		out.Break, out.Error = &auditBreak{Seq: be.Seq, Kind: be.Kind, Detail: be.Detail}, be.Error()
		return out, err
	}
	return out, err
}

// VerifyAuditStopped verifies the audit log (chain and MACs, with the
// audit key next to dataDir) of a central that is not running (Badger
// allows one process per store). A broken chain is a *audit.BreakError.
func VerifyAuditStopped(ctx context.Context, dataDir string) (audit.Report, error) {
	var rep audit.Report
	err := withStoppedAudit(ctx, Config{DataDir: dataDir}, func(l *audit.Log) error {
		var err error
		rep, err = l.Verify(ctx)
		return err
	})
	return rep, err
}
