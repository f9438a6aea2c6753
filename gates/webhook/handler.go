// Package webhook receives gate events over HTTP from access controllers,
// booth buttons and anything that can send a signed JSON POST. Each
// controller has its own secret; a request is accepted only if its HMAC
// signature is right, its timestamp is within the allowed skew and its
// event IDs have not been seen before, so a captured request cannot be
// replayed. Every refusal is a 4xx with a JSON body saying why, and is
// counted.
//
// Answers, for the controller's retry logic:
//
//   - 200 {"accepted":N,"duplicates":D}: the N events are durable (on the
//     edge's fsynced gate journal, when the edge has one) before this is
//     sent, so a kill -9 right after it loses none; D were already received.
//   - 409 {"accepted":0,"duplicates":D,"code":"replayed"}: every event in
//     the request was already received, also before an edge restart (the
//     journal keeps the IDs for twice the timestamp window): a retry of a
//     delivered batch, or a captured request sent again. It raises no
//     second alert; the controller should treat it as delivered.
//   - 503 {"code":"unavailable"}: not (all) taken; retry. Events counted
//     in "accepted" are durable and come back as duplicates.
package webhook

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/internal/replay"
)

// Controller is one sender of events.
type Controller struct {
	ID string // sent in X-Vigil-Controller
	// Secrets that may sign its requests: normally one; two while a secret
	// is being rotated. At least 16 bytes each.
	Secrets []string
	// Gates it may report events for.
	Gates []string
}

// Config configures the handler; zero fields take defaults.
type Config struct {
	Controllers []Controller
	MaxBody     int64         // bytes, default 64 KiB
	MaxSkew     time.Duration // accepted timestamp distance from now, default 5m
	DedupSize   int           // event IDs remembered per controller, default 4096
	Now         func() time.Time
	// Batch, if set, takes each request's events in one call (one durable
	// write) instead of the sink one by one.
	Batch gates.BatchSink
}

// Defaults.
const (
	DefaultMaxBody   = 64 << 10
	DefaultMaxSkew   = 5 * time.Minute
	DefaultDedupSize = 4096
	MinSecretLen     = 16
)

// Handler is the http.Handler the edge mounts (e.g. at POST /api/v1/gates/events).
type Handler struct {
	cfg     Config
	sink    gates.Sink
	log     *slog.Logger
	ctrl    map[string]*controller
	metrics *metrics

	logMu   sync.Mutex
	lastLog map[string]time.Time
}

type controller struct {
	Controller
	gates map[string]bool
	seen  *replay.Set
}

// New validates cfg and returns a handler that hands events to sink.
// Metrics go to reg (nil: not registered).
func New(cfg Config, sink gates.Sink, reg prometheus.Registerer, log *slog.Logger) (*Handler, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.DedupSize <= 0 {
		cfg.DedupSize = DefaultDedupSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{cfg: cfg, sink: sink, log: log.With("component", "gates/webhook"), ctrl: map[string]*controller{}, lastLog: map[string]time.Time{}}
	for _, c := range cfg.Controllers {
		if c.ID == "" || len(c.ID) > gates.MaxFieldLen {
			return nil, fmt.Errorf("webhook: controller id %q: must be 1-%d characters", c.ID, gates.MaxFieldLen)
		}
		if h.ctrl[c.ID] != nil {
			return nil, fmt.Errorf("webhook: controller %q is configured twice", c.ID)
		}
		if len(c.Secrets) == 0 {
			return nil, fmt.Errorf("webhook: controller %q has no secret", c.ID)
		}
		for _, s := range c.Secrets {
			if len(s) < MinSecretLen {
				return nil, fmt.Errorf("webhook: controller %q: secret shorter than %d bytes", c.ID, MinSecretLen)
			}
		}
		if len(c.Gates) == 0 {
			return nil, fmt.Errorf("webhook: controller %q may report no gate", c.ID)
		}
		cc := &controller{Controller: c, gates: map[string]bool{}, seen: replay.New(cfg.DedupSize, 2*cfg.MaxSkew)}
		for _, g := range c.Gates {
			cc.gates[g] = true
		}
		h.ctrl[c.ID] = cc
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	// Every series exists from start-up, at 0 until it happens.
	for _, c := range codes {
		m.requests.WithLabelValues(c).Add(0)
	}
	for _, c := range cfg.Controllers {
		m.events.WithLabelValues(c.ID).Add(0)
		m.duplicates.WithLabelValues(c.ID).Add(0)
	}
	h.metrics = m
	return h, nil
}

// Result codes, the "code" of an error response and the "result" label of
// vigil_gate_webhook_requests_total.
const (
	CodeOK                = "ok"
	CodeMethod            = "method_not_allowed"
	CodeMediaType         = "unsupported_media_type"
	CodeTooLarge          = "too_large"
	CodeBadHeader         = "bad_header"
	CodeUnknownController = "unknown_controller"
	CodeBadSignature      = "bad_signature"
	CodeStale             = "stale_timestamp"
	CodeMalformed         = "malformed"
	CodeInvalid           = "invalid_event"
	CodeForbiddenGate     = "forbidden_gate"
	CodeReplayed          = "replayed"
	CodeUnavailable       = "unavailable"
)

// codes lists every result code (the metric's label values).
var codes = []string{CodeOK, CodeMethod, CodeMediaType, CodeTooLarge, CodeBadHeader, CodeUnknownController,
	CodeBadSignature, CodeStale, CodeMalformed, CodeInvalid, CodeForbiddenGate, CodeReplayed, CodeUnavailable}

// ServeHTTP takes one signed request of gate events from a controller.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	c, code, msg := h.authenticate(r, body)
	if c == nil {
		status := http.StatusUnauthorized
		if code == CodeBadHeader {
			status = http.StatusBadRequest
		}
		h.fail(w, r, status, code, msg)
		return
	}
	now := h.cfg.Now()
	evs, ok := h.events(w, r, c, body, now)
	if !ok {
		return
	}
	var res Response
	take := c.reserve(evs, now, &res)
	failed, failedID := c.settle(take, h.deliver(r, take), &res)
	h.count(c, res)
	if failed != nil {
		h.refuse(w, r, http.StatusServiceUnavailable, res, CodeUnavailable, fmt.Sprintf("event %q not taken: %v", failedID, failed))
		return
	}
	if res.Accepted == 0 {
		h.refuse(w, r, http.StatusConflict, res, CodeReplayed, "every event in this request was already received")
		return
	}
	h.metrics.requests.WithLabelValues(CodeOK).Inc()
	writeJSON(w, http.StatusOK, res)
}

// readBody checks the request's method, media type and size and reads
// its body; ok false: the request was refused.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, http.StatusMethodNotAllowed, CodeMethod, "use POST")
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			h.fail(w, r, http.StatusUnsupportedMediaType, CodeMediaType, "Content-Type must be application/json")
			return nil, false
		}
	}
	if r.ContentLength > h.cfg.MaxBody {
		h.fail(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBody))
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, CodeMalformed, "reading body: "+err.Error())
		return nil, false
	}
	if int64(len(body)) > h.cfg.MaxBody {
		h.fail(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBody))
		return nil, false
	}
	return body, true
}

// events parses the authenticated body from c and checks that c may
// report every gate in it; ok false: the request was refused.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, c *controller, body []byte, now time.Time) (evs []gates.Event, ok bool) {
	evs, err := gates.ParsePayload(body, now)
	if err != nil {
		code := CodeMalformed
		if errors.Is(err, gates.ErrInvalid) {
			code = CodeInvalid
		}
		h.fail(w, r, http.StatusBadRequest, code, err.Error())
		return nil, false
	}
	for _, ev := range evs {
		if !c.gates[ev.Gate] {
			h.fail(w, r, http.StatusForbidden, CodeForbiddenGate, fmt.Sprintf("controller %q may not report gate %q", c.ID, ev.Gate))
			return nil, false
		}
	}
	return evs, true
}

// reserve fills in the events' device and source and returns those not
// seen from c before, counting the others in res.Duplicates.
func (c *controller) reserve(evs []gates.Event, now time.Time, res *Response) []gates.Event {
	var take []gates.Event
	for _, ev := range evs {
		if ev.Device == "" {
			ev.Device = c.ID
		}
		ev.Source = "webhook/" + c.ID
		if !c.seen.Reserve(ev.ID, now) {
			res.Duplicates++
			continue
		}
		take = append(take, ev)
	}
	return take
}

// settle counts the delivered events in res and releases those that
// were not taken, so the controller's retry passes; it returns the first
// failure and its event's ID.
func (c *controller) settle(take []gates.Event, errs []error, res *Response) (failed error, failedID string) {
	for i, err := range errs {
		switch {
		case err == nil:
			res.Accepted++
		case errors.Is(err, gates.ErrDuplicate):
			res.Duplicates++ // taken before this edge restarted
		default:
			c.seen.Release(take[i].ID) // not delivered: the controller's retry must pass
			if failed == nil {
				failed, failedID = err, take[i].ID
			}
		}
	}
	return failed, failedID
}

// deliver hands the events to the batch sink, or else to the sink one by
// one, stopping at the first failure (the rest fail with it).
func (h *Handler) deliver(r *http.Request, evs []gates.Event) []error {
	if len(evs) == 0 {
		return nil
	}
	if h.cfg.Batch != nil {
		return h.cfg.Batch(r.Context(), evs)
	}
	errs := make([]error, len(evs))
	for i, ev := range evs {
		if errs[i] = h.sink(r.Context(), ev); errs[i] != nil && !errors.Is(errs[i], gates.ErrDuplicate) {
			for k := i + 1; k < len(evs); k++ {
				errs[k] = errs[i]
			}
			break
		}
	}
	return errs
}

func (h *Handler) count(c *controller, res Response) {
	h.metrics.events.WithLabelValues(c.ID).Add(float64(res.Accepted))
	h.metrics.duplicates.WithLabelValues(c.ID).Add(float64(res.Duplicates))
}

// authenticate finds the controller and checks signature and timestamp.
// Nothing from the body is parsed before this passes.
func (h *Handler) authenticate(r *http.Request, body []byte) (*controller, string, string) {
	id := r.Header.Get(HeaderController)
	tsText := r.Header.Get(HeaderTimestamp)
	sig := r.Header.Get(HeaderSignature)
	if id == "" || tsText == "" || sig == "" {
		return nil, CodeBadHeader, fmt.Sprintf("%s, %s and %s are required", HeaderController, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || len(tsText) > 12 {
		return nil, CodeBadHeader, HeaderTimestamp + " must be Unix seconds"
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(got) != 32 {
		return nil, CodeBadHeader, HeaderSignature + ` must be "sha256=" and 64 hex digits`
	}
	c := h.ctrl[id]
	if c == nil {
		return nil, CodeUnknownController, fmt.Sprintf("controller %q is not configured on this edge", id)
	}
	valid := false
	for _, s := range c.Secrets {
		if hmac.Equal(got, mac(s, tsText, body)) {
			valid = true
		}
	}
	if !valid {
		return nil, CodeBadSignature, "signature does not match (HMAC-SHA256 of timestamp + \".\" + body with this controller's secret)"
	}
	now := h.cfg.Now()
	if skew := now.Sub(time.Unix(ts, 0)); skew > h.cfg.MaxSkew || skew < -h.cfg.MaxSkew {
		return nil, CodeStale, fmt.Sprintf("timestamp is %v away from this edge's clock (at most %v allowed): check the controller's clock", skew.Round(time.Second), h.cfg.MaxSkew)
	}
	return c, "", ""
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	h.refuse(w, r, status, Response{}, code, msg)
}

// refuse answers with an error; res carries counts of a partly handled batch.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, res Response, code, msg string) {
	h.metrics.requests.WithLabelValues(code).Inc()
	h.logRefusal(r, code, msg)
	res.Error, res.Code = msg, code
	writeJSON(w, status, res)
}

// logRefusal logs each kind of refusal at most once every 10 s: an
// installer sees why a controller fails, a flood does not fill the disk.
func (h *Handler) logRefusal(r *http.Request, code, msg string) {
	now := time.Now()
	h.logMu.Lock()
	quiet := now.Sub(h.lastLog[code]) < 10*time.Second
	if !quiet {
		h.lastLog[code] = now
	}
	h.logMu.Unlock()
	if !quiet {
		h.log.Warn("gate webhook refused", "code", code, "reason", msg, "remote", r.RemoteAddr, "controller", r.Header.Get(HeaderController))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
