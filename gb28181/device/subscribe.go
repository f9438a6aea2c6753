package device

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// Event subscriptions (GB/T 28181-2016 9.11, on RFC 6665): the platform
// SUBSCRIBEs with a Query Alarm (filtered by priority range, alarm
// methods and type) or a Query Catalog body; the device answers 200 with
// a Response Result OK, keeps the subscription for the Expires it granted
// (a refresh in the dialog extends it, Expires: 0 ends it), and sends a
// NOTIFY in its dialog for every alarm that passes the filter (besides the
// alarm MESSAGE) and every catalog change. The Event header of a NOTIFY is
// the SUBSCRIBE's, as RFC 6665 asks (GB platforms write "presence" or the
// command's name). MANSCDP has no "current state" document, so no NOTIFY
// goes out when a subscription starts or ends.

const (
	defaultSubExpires = 3600 * time.Second
	maxSubExpires     = 86400 * time.Second
)

// subscription is one live event subscription: a SUBSCRIBE dialog.
type subscription struct {
	*dialog
	kind     string // manscdp.CmdAlarm or manscdp.CmdCatalog
	event    string // the SUBSCRIBE's Event header, for its NOTIFYs
	deviceID string // the device, or the one channel subscribed to
	charset  manscdp.Charset
	expires  time.Time // guarded by session.mu

	// Alarm filter; zero values mean "all".
	minPrio, maxPrio int
	methods          string // digits of AlarmMethod ("12": telephone or device)
	alarmType        string
}

// matches applies the subscription's filter to an alarm.
func (sub *subscription) matches(a manscdp.Alarm, device string) bool {
	if sub.deviceID != device && sub.deviceID != a.DeviceID {
		return false
	}
	p := int(a.Priority)
	if sub.minPrio > 0 && p < sub.minPrio || sub.maxPrio > 0 && p > sub.maxPrio {
		return false
	}
	if m := strings.Trim(sub.methods, "0"); m != "" && !strings.ContainsRune(m, rune('0'+int(a.Method))) {
		return false
	}
	if sub.alarmType != "" && sub.alarmType != "0" && sub.alarmType != strconv.Itoa(a.Type) {
		return false
	}
	return true
}

func (s *session) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	d := s.d
	expires := defaultSubExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			s.respond(req, tx, 400, "Bad Request")
			return
		}
		expires = min(time.Duration(n)*time.Second, maxSubExpires)
	}
	if key, ok := requestKey(req); ok {
		s.refreshSubscription(req, tx, key, expires)
		return
	}
	event := req.GetHeader("Event")
	if event == nil || strings.TrimSpace(event.Value()) == "" {
		s.respond(req, tx, 489, "Bad Event")
		return
	}
	if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(ct.Value()), ContentType) {
		s.respond(req, tx, 415, "Unsupported Media Type")
		return
	}
	m, err := manscdp.Parse(req.Body())
	if err != nil || m.Root != manscdp.RootQuery {
		d.log.Warn("platform SUBSCRIBE not understood", "error", err, "from", req.Source())
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	if m.CmdType != manscdp.CmdAlarm && m.CmdType != manscdp.CmdCatalog {
		d.log.Info("platform subscription not supported", "cmd", m.CmdType)
		s.respond(req, tx, 489, "Bad Event")
		return
	}
	if m.DeviceID != d.cfg.DeviceID && !d.hasChannel(m.DeviceID, KindCamera) && !d.hasChannel(m.DeviceID, KindAlarm) {
		s.respond(req, tx, 404, "Not Found")
		return
	}
	sub := &subscription{kind: m.CmdType, event: event.Value(), deviceID: m.DeviceID, charset: m.Charset,
		methods: m.AlarmMethod, alarmType: m.AlarmType}
	if sub.minPrio, err = optPriority(m.StartAlarmPriority); err == nil {
		sub.maxPrio, err = optPriority(m.EndAlarmPriority)
	}
	if err != nil {
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	if strings.Trim(sub.methods, "01234567") != "" {
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	body, err := manscdp.ResultResponse(manscdp.Header{SN: m.SN, DeviceID: m.DeviceID, Charset: m.Charset}, m.CmdType, true)
	if err != nil {
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(sip.NewHeader("Content-Type", ContentType))
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	if expires == 0 {
		// A fetch: nothing to keep.
		s.respondWith(tx, res)
		return
	}
	dl, err := newDialog(req)
	if err != nil {
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	sub.dialog = dl
	dl.answer(res, s.contact)
	s.mu.Lock()
	sub.expires = time.Now().Add(expires)
	s.subs[dl.key()] = sub
	s.countSubs()
	s.mu.Unlock()
	s.respondWith(tx, res)
	d.log.Info("platform subscribed", "kind", sub.kind, "device", sub.deviceID, "expires", expires, "event", sub.event)
}

func optPriority(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 4 {
		return 0, fmt.Errorf("alarm priority %q, want 0-4", v)
	}
	return n, nil
}

// refreshSubscription handles a SUBSCRIBE in an existing subscription's
// dialog: a refresh, or Expires: 0 to end it.
func (s *session) refreshSubscription(req *sip.Request, tx sip.ServerTransaction, key string, expires time.Duration) {
	s.mu.Lock()
	sub := s.subs[key]
	s.mu.Unlock()
	if sub == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if !sub.checkCSeq(req) {
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	s.mu.Lock()
	if expires == 0 {
		delete(s.subs, key)
	} else {
		sub.expires = time.Now().Add(expires)
	}
	s.countSubs()
	s.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	s.respondWith(tx, res)
	if expires == 0 {
		s.d.log.Info("platform unsubscribed", "kind", sub.kind, "device", sub.deviceID)
	}
}

func (s *session) respondWith(tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		s.d.log.Debug("respond", "code", res.StatusCode, "error", err)
	}
}

// countSubs drops expired subscriptions and updates the gauge; s.mu held.
func (s *session) countSubs() {
	now := time.Now()
	n := map[string]int{}
	for k, sub := range s.subs {
		if !now.Before(sub.expires) {
			delete(s.subs, k)
			continue
		}
		n[sub.kind]++
	}
	for _, k := range subKinds {
		s.d.m.subs.WithLabelValues(k).Set(float64(n[k]))
	}
}

// liveSubs returns the unexpired subscriptions of kind.
func (s *session) liveSubs(kind string) []*subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countSubs()
	var out []*subscription
	for _, sub := range s.subs {
		if sub.kind == kind {
			out = append(out, sub)
		}
	}
	return out
}

// notify sends one NOTIFY in sub's dialog. A 481 means the platform has
// forgotten the subscription: it ends here too (RFC 6665 4.2.2).
func (s *session) notify(ctx context.Context, sub *subscription, body []byte) error {
	s.mu.Lock()
	left := time.Until(sub.expires)
	s.mu.Unlock()
	res, err := s.doInDialog(ctx, sub.dialog, sip.NOTIFY, func(req *sip.Request) {
		req.AppendHeader(sip.NewHeader("Event", sub.event))
		req.AppendHeader(sip.NewHeader("Subscription-State", fmt.Sprintf("active;expires=%d", max(int(left/time.Second), 1))))
		req.AppendHeader(sip.NewHeader("Content-Type", ContentType))
		req.SetBody(body)
	})
	if err == nil && res.StatusCode >= 300 {
		if res.StatusCode == 481 {
			s.mu.Lock()
			delete(s.subs, sub.key())
			s.countSubs()
			s.mu.Unlock()
		}
		err = fmt.Errorf("refused: %d %s", res.StatusCode, res.Reason)
	}
	if err != nil {
		s.d.m.notifies.WithLabelValues("failed").Inc()
		return fmt.Errorf("gb28181: %s NOTIFY to %s: %w", sub.kind, sub.target.String(), err)
	}
	s.d.m.notifies.WithLabelValues("ok").Inc()
	return nil
}

// notifyAlarm sends a to every live alarm subscription whose filter it
// passes; failures are logged (the alarm MESSAGE is what SendAlarm
// reports on).
func (s *session) notifyAlarm(ctx context.Context, a manscdp.Alarm) {
	d := s.d
	for _, sub := range s.liveSubs(manscdp.CmdAlarm) {
		if !sub.matches(a, d.cfg.DeviceID) {
			continue
		}
		body, err := manscdp.AlarmNotify(manscdp.Header{SN: d.nextSN(), DeviceID: a.DeviceID, Charset: sub.charset}, a, d.loc)
		if err == nil {
			err = s.notify(ctx, sub, body)
		}
		if err != nil {
			d.log.Warn("alarm NOTIFY not delivered", "alarm", a.DeviceID, "error", err)
		}
	}
}

// CatalogChanged tells catalog subscribers what changed in the provider's
// channels since the last call (or since New): ADD and DEL for channels
// that appeared or went, ON and OFF for a change of Online, UPDATE for any
// other catalog field. It returns the NOTIFYs' failures; with no
// subscriber (or while Run is not running) it only takes the new list as
// the base of the next call's differences.
func (d *Device) CatalogChanged(ctx context.Context) error {
	now := d.prov.Channels()
	d.mu.Lock()
	before := d.catalog
	d.catalog = now
	d.mu.Unlock()
	events := d.catalogEvents(before, now)
	if len(events) == 0 {
		return nil
	}
	s := d.current()
	if s == nil {
		return nil
	}
	var errs []error
	for _, sub := range s.liveSubs(manscdp.CmdCatalog) {
		bodies, err := manscdp.CatalogNotify(manscdp.Header{SN: d.nextSN(), DeviceID: d.cfg.DeviceID, Charset: sub.charset}, events, s.split)
		if err != nil {
			return err
		}
		for _, b := range bodies {
			if err := s.notify(ctx, sub, b); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// catalogEvents compares two channel lists.
func (d *Device) catalogEvents(before, now []Channel) []manscdp.CatalogEvent {
	old := map[string]Channel{}
	for _, c := range before {
		old[c.ID] = c
	}
	items := d.catalogItems(now)
	var events []manscdp.CatalogEvent
	seen := map[string]bool{}
	for i, c := range now {
		seen[c.ID] = true
		o, ok := old[c.ID]
		switch {
		case !ok:
			events = append(events, manscdp.CatalogEvent{Item: items[i], Event: manscdp.EventAdd})
			continue
		case o.Online != c.Online:
			events = append(events, manscdp.CatalogEvent{Item: items[i], Event: pickEvent(c.Online)})
		}
		if !reflect.DeepEqual(d.catalogItems([]Channel{o})[0], withStatus(items[i], o.Online)) {
			events = append(events, manscdp.CatalogEvent{Item: items[i], Event: manscdp.EventUpdate})
		}
	}
	for _, c := range before {
		if !seen[c.ID] {
			events = append(events, manscdp.CatalogEvent{Item: manscdp.CatalogItem{DeviceID: c.ID}, Event: manscdp.EventDel})
		}
	}
	return events
}

func pickEvent(online bool) string {
	if online {
		return manscdp.EventOn
	}
	return manscdp.EventOff
}

// withStatus is it with the Status an earlier Online would have given, so
// that an ON/OFF alone is not also an UPDATE.
func withStatus(it manscdp.CatalogItem, online bool) manscdp.CatalogItem {
	it.Status = manscdp.StatusOff
	if online {
		it.Status = manscdp.StatusOn
	}
	return it
}
