package edge

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/vigil-perimeter/vigil/internal/repeats"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/wire"
)

// Audited acts on the box reach central's audit log through the outbox:
// queued durably before the act (a video read that cannot be recorded is
// not served), sent in order with the alerts, and stored by central once
// per record ID however often it is re-sent.

// accessActor is who did something on the box, as its credential says.
type accessActor struct {
	User, Role string
}

// Actors that are not console users.
var (
	actorSetup   = accessActor{User: "setup-code", Role: "installer"} // the setup page's code
	actorMetrics = accessActor{User: "metrics-scraper", Role: "scrape"}
)

// Audit actions the box records (central's audit vocabulary).
const (
	accessView         = "view"          // a picture or a timeline
	accessDownload     = "download"      // video
	accessConfigChange = "config_change" // setup page: zones, gates, arming, finish
	accessEnrol        = "enrol"         // setup page: enrolment
	accessSelfTest     = "selftest"      // a self-test kept and sent to central
)

var accessActions = []string{accessView, accessDownload, accessConfigChange, accessEnrol, accessSelfTest}

func newAccessID(edgeID string, at time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("acc-%s-%d-%s", edgeID, at.UnixNano(), hex.EncodeToString(b[:]))
}

// accessViewWindow: the same user viewing the same thing with the same
// details (a timeline or a picture polled again) is recorded once per
// window, as central records its own views (central/audit_hooks.go).
const accessViewWindow = 10 * time.Minute

// auditLog is the box's side of central's audit log: one record per
// audited act, queued in the outbox before the act.
type auditLog struct {
	edgeID   string
	box      *guardedBox
	recorded *prometheus.CounterVec // queued for central, by action
	log      *slog.Logger
	views    *repeats.Window // views recorded in the last accessViewWindow
}

func newAuditLog(edgeID string, box *guardedBox, reg prometheus.Registerer, log *slog.Logger) *auditLog {
	a := &auditLog{edgeID: edgeID, box: box, log: log, views: repeats.New(accessViewWindow),
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_access_records_total",
			Help: "Audited acts on the box (video reads, setup changes) queued for central's audit log, by action."}, []string{"action"})}
	for _, act := range accessActions {
		a.recorded.WithLabelValues(act)
	}
	reg.MustRegister(a.recorded)
	return a
}

// record queues one entry for central's audit log. The error is the
// outbox's (disk full, closed): the caller refuses what it was asked. A
// view repeated within accessViewWindow is not recorded again.
func (a *auditLog) record(who accessActor, action, target, client string, details any) error {
	now := time.Now().UTC()
	rec := wire.AccessRecord{
		ID: newAccessID(a.edgeID, now), EdgeID: a.edgeID, Time: now,
		User: who.User, Role: who.Role, Action: action, Target: target, Client: client,
	}
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("access record: %w", err)
		}
		if string(b) != "null" && string(b) != "{}" {
			rec.Details = b
		}
	}
	if err := rec.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("access record: %w", err)
	}
	key := ""
	if action == accessView {
		key = strings.Join([]string{who.User, who.Role, target, client, string(rec.Details)}, "\x00")
		if !a.views.First(key, now) {
			return nil
		}
	}
	// Red: the byte bound of the outbox never drops the chain of custody.
	if err := a.box.use(func(b *outbox.Outbox) error {
		return b.Put(outbox.Item{Kind: wire.TypeAccess, ID: rec.ID, Severity: wire.Red, Body: body})
	}); err != nil {
		a.views.Forget(key)
		a.log.Error("access not recorded", "action", action, "target", target, "user", who.User, "err", err)
		return err
	}
	a.recorded.WithLabelValues(action).Inc()
	return nil
}

// SetupAudit implements setup.Backend: a change made on the setup page
// (enrolment, zones, gates, arming, finish) goes to central's audit log.
func (s *setupBackend) SetupAudit(action, target, client string, details any) error {
	return s.audit(action, target, client, details)
}
