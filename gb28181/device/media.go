package device

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// The media seam's SIP side: the device is the UAS of the platform's
// INVITE dialogs (RFC 3261 sections 12-15). A Media implementation owns
// SDP and RTP; the device owns the dialog: it answers 100 at once, puts
// its To tag and Contact in the 2xx, retransmits the 2xx until the ACK
// (T1 doubling up to T2; over TCP it only waits), ends the session with a
// BYE when no ACK came within 64*T1, matches in-dialog requests by
// Call-ID and both tags (481 for an unknown dialog, 500 for a CSeq that
// does not increase), and can end a call itself (Hangup) or tell the
// platform that a playback or download reached its end (MediaStatus).
// Without a Media implementation INVITEs are refused with 501.

// ErrNoCall is the answer of Hangup and MediaStatus for a Call-ID that is
// not a current media session.
var ErrNoCall = errors.New("gb28181: no such media session")

// call is one media session: an INVITE dialog.
type call struct {
	*dialog
	channel    string
	inviteCSeq uint32
	res        *sip.Response // the 2xx, retransmitted until the ACK

	ackOnce sync.Once
	acked   chan struct{}
	endOnce sync.Once
	ended   chan struct{}
}

func (c *call) ack() bool {
	first := false
	c.ackOnce.Do(func() { first = true; close(c.acked) })
	return first
}

func (s *session) addCall(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[c.key()] = c
	s.d.m.sessions.Set(float64(len(s.calls)))
}

// takeCall removes c from the session's calls; false when it was gone
// already (someone else ended it).
func (s *session) takeCall(c *call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[c.key()] != c {
		return false
	}
	delete(s.calls, c.key())
	s.d.m.sessions.Set(float64(len(s.calls)))
	c.endOnce.Do(func() { close(c.ended) })
	return true
}

func (s *session) callByKey(key string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

func (s *session) callByID(callID string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if c.callID == callID {
			return c
		}
	}
	return nil
}

func (s *session) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	d := s.d
	if key, ok := requestKey(req); ok {
		// A re-INVITE: hold or a new offer. GB/T 28181 sessions do not
		// change; the call goes on as it was (RFC 3261 14.2).
		c := s.callByKey(key)
		switch {
		case c == nil:
			s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		case !c.checkCSeq(req):
			s.respond(req, tx, 500, "Server Internal Error")
		default:
			s.respond(req, tx, 488, "Not Acceptable Here")
		}
		return
	}
	if d.media == nil {
		d.log.Info("platform INVITE refused: no media on this device", "call", callID(req))
		s.respond(req, tx, 501, "Not Implemented")
		return
	}
	channel := req.Recipient.User
	if !d.hasChannel(channel, KindCamera) {
		d.log.Info("platform INVITE for an unknown channel", "channel", channel, "call", callID(req))
		s.respond(req, tx, 404, "Not Found")
		return
	}
	dl, err := newDialog(req)
	if err != nil {
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	s.respond(req, tx, 100, "Trying")
	inv := Invite{CallID: dl.callID, ChannelID: channel, SDP: req.Body(), From: dl.remote.User}
	if h := req.GetHeader("Subject"); h != nil {
		inv.Subject = h.Value()
	}
	answer, err := d.media.Invite(s.ctx, inv)
	if err != nil {
		code, reason := 488, "Not Acceptable Here"
		var se *StatusError
		if errors.As(err, &se) {
			code, reason = se.Code, se.Reason
		}
		d.log.Info("platform INVITE refused by media", "channel", channel, "call", inv.CallID, "error", err)
		s.respond(req, tx, code, reason)
		return
	}
	c := &call{dialog: dl, channel: channel, inviteCSeq: req.CSeq().SeqNo, acked: make(chan struct{}), ended: make(chan struct{})}
	res := sip.NewResponseFromRequest(req, 200, "OK", answer)
	dl.answer(res, s.contact)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	c.res = res
	// Known before the 2xx leaves, so that an ACK right behind it matches.
	s.addCall(c)
	if err := tx.Respond(res); err != nil {
		// A CANCEL or a transport error got there first.
		d.log.Info("INVITE answer not sent: session ended", "call", inv.CallID, "error", err)
		if s.takeCall(c) {
			d.media.Bye(s.ctx, c.callID)
		}
		return
	}
	d.log.Info("media session started", "call", c.callID, "channel", channel, "from", inv.From)
	s.awaitAck(c, tx)
}

// awaitAck retransmits the 2xx until the ACK comes (RFC 3261 13.3.1.4;
// over TCP the transport is reliable and the device only waits). Without
// an ACK within ackWait the session ends: Media.Bye, and a BYE to the
// platform.
func (s *session) awaitAck(c *call, tx sip.ServerTransaction) {
	d := s.d
	interval := d.t1
	retrans := time.NewTimer(interval)
	defer retrans.Stop()
	if s.network != "UDP" {
		retrans.Stop()
	}
	deadline := time.NewTimer(d.ackWait)
	defer deadline.Stop()
	for {
		select {
		case <-c.acked:
			return
		case <-c.ended:
			return
		case <-s.ctx.Done():
			return
		case <-tx.Acks():
			// An ACK sent in the INVITE's transaction (an old UA's
			// habit) counts as well.
			if c.ack() {
				d.media.Ack(s.ctx, c.callID)
			}
			return
		case <-retrans.C:
			if err := tx.Respond(c.res); err != nil {
				d.log.Debug("2xx retransmission", "call", c.callID, "error", err)
			}
			interval = min(2*interval, d.t2)
			retrans.Reset(interval)
		case <-deadline.C:
			d.m.calls.WithLabelValues("no_ack").Inc()
			d.log.Warn("no ACK for the INVITE's 200: ending the session", "call", c.callID, "waited", d.ackWait)
			if !s.takeCall(c) {
				return
			}
			d.media.Bye(s.ctx, c.callID)
			if res, err := s.doInDialog(s.ctx, c.dialog, sip.BYE, nil); err != nil || res.StatusCode >= 300 {
				d.log.Debug("BYE after missing ACK", "call", c.callID, "error", err, "answer", startLine(res))
			}
			return
		}
	}
}

func (s *session) onAck(req *sip.Request, tx sip.ServerTransaction) {
	key, ok := requestKey(req)
	if !ok {
		return
	}
	c := s.callByKey(key)
	if c == nil || req.CSeq() == nil || req.CSeq().SeqNo != c.inviteCSeq {
		// ACKs get no answer; a stray one is dropped.
		s.d.log.Debug("ACK for no current session", "call", callID(req))
		return
	}
	if c.ack() {
		s.d.m.calls.WithLabelValues("ok").Inc()
		s.d.media.Ack(s.ctx, c.callID)
	}
}

// inDialogCall finds the call of an in-dialog request and checks its
// CSeq, answering 481 or 500 itself when it cannot go on.
func (s *session) inDialogCall(req *sip.Request, tx sip.ServerTransaction) *call {
	key, ok := requestKey(req)
	var c *call
	if ok {
		c = s.callByKey(key)
	}
	if c == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return nil
	}
	if !c.checkCSeq(req) {
		s.respond(req, tx, 500, "Server Internal Error")
		return nil
	}
	return c
}

func (s *session) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.inDialogCall(req, tx)
	if c == nil {
		return
	}
	// The dialog ends before the 200 goes out: a request the platform
	// sends once it has the 200 (sipgo serves requests concurrently) finds
	// no dialog (481).
	taken := s.takeCall(c)
	s.respond(req, tx, 200, "OK")
	if taken {
		s.d.log.Info("media session ended by the platform", "call", c.callID, "channel", c.channel)
		s.d.media.Bye(s.ctx, c.callID)
	}
}

func (s *session) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := s.inDialogCall(req, tx)
	if c == nil {
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	if err := s.d.media.Info(s.ctx, c.callID, ct, req.Body()); err != nil {
		code, reason := 400, "Bad Request"
		var se *StatusError
		if errors.As(err, &se) {
			code, reason = se.Code, se.Reason
		}
		s.respond(req, tx, code, reason)
		return
	}
	s.respond(req, tx, 200, "OK")
}

// endCalls ends every session as the device stops: Media.Bye, and a BYE
// to the platform with a short deadline of its own (ctx has ended).
func (s *session) endCalls() {
	s.mu.Lock()
	calls := make([]*call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range calls {
		if !s.takeCall(c) {
			continue
		}
		s.d.media.Bye(ctx, c.callID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sendBye(ctx, c, "device stopped")
		}()
	}
	wg.Wait()
}

func (s *session) sendBye(ctx context.Context, c *call, reason string) error {
	res, err := s.doInDialog(ctx, c.dialog, sip.BYE, func(req *sip.Request) {
		if reason != "" {
			req.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=16;text="`+quoteText(reason)+`"`))
		}
	})
	if err != nil {
		return fmt.Errorf("gb28181: BYE for %s: no answer from the platform: %w", c.callID, err)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("gb28181: BYE for %s refused: %d %s", c.callID, res.StatusCode, res.Reason)
	}
	return nil
}

// quoteText makes reason fit a quoted-string.
func quoteText(reason string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '"', '\\', '\r', '\n':
			return ' '
		}
		return r
	}, reason)
}

func startLine(res *sip.Response) string {
	if res == nil {
		return ""
	}
	return res.StartLine()
}

// current is the running SIP session, nil when Run is not running.
func (d *Device) current() *session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sess
}

// findCall finds a current media session by Call-ID; c is nil when there
// is none.
func (d *Device) findCall(callID string) (s *session, c *call) {
	if s = d.current(); s != nil {
		c = s.callByID(callID)
	}
	return s, c
}

// Hangup ends a media session from the device's side (the camera was
// lost, a download was sent to its end): a BYE with reason in a Reason
// header goes to the platform. The caller has ended the media already,
// so Media.Bye is not called. A call not yet confirmed by the platform's
// ACK is hung up once it is (RFC 3261 15: no BYE before the ACK).
func (d *Device) Hangup(ctx context.Context, callID, reason string) error {
	s, c := d.findCall(callID)
	if c == nil {
		return ErrNoCall
	}
	select {
	case <-c.acked:
	case <-c.ended:
		return ErrNoCall
	case <-ctx.Done():
		return ctx.Err()
	}
	if !s.takeCall(c) {
		return ErrNoCall
	}
	d.log.Info("media session ended by the device", "call", callID, "channel", c.channel, "reason", reason)
	return s.sendBye(ctx, c, reason)
}

// MediaStatus tells the platform, within the session's dialog, that a
// playback or download has sent its recording to the end (Notify
// MediaStatus, NotifyType 121, GB/T 28181-2016 9.8 and 9.9); the platform
// answers with a BYE, or the device hangs up itself.
func (d *Device) MediaStatus(ctx context.Context, callID string) error {
	s, c := d.findCall(callID)
	if c == nil {
		return ErrNoCall
	}
	body, err := manscdp.MediaStatusNotify(manscdp.Header{SN: d.nextSN(), DeviceID: c.channel, Charset: manscdp.GB2312})
	if err != nil {
		return err
	}
	res, err := s.doInDialog(ctx, c.dialog, sip.MESSAGE, func(req *sip.Request) {
		req.AppendHeader(sip.NewHeader("Content-Type", ContentType))
		req.SetBody(body)
	})
	if err != nil {
		return fmt.Errorf("gb28181: media status for %s: no answer from the platform: %w", callID, err)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("gb28181: media status for %s refused: %d %s", callID, res.StatusCode, res.Reason)
	}
	return nil
}

// hasChannel reports whether id is one of the provider's channels of kind.
func (d *Device) hasChannel(id string, kind Kind) bool {
	for _, c := range d.prov.Channels() {
		if c.ID == id && c.Kind == kind {
			return true
		}
	}
	return false
}

func callID(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
}
