package device

import (
	"github.com/emiago/sipgo/sip"
)

// The media seam. Without a Media implementation the device refuses
// INVITEs with 501 and answers in-dialog requests for unknown calls with
// 481, as RFC 3261 asks; with one, the calls below hand each request to it.
// (gb28181/media brings the implementation; dialog handling moves here
// with it.)

func (s *session) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if s.d.media == nil {
		s.d.log.Info("platform INVITE refused: no media on this device yet", "call", callID(req))
		s.respond(req, tx, 501, "Not Implemented")
		return
	}
	s.respond(req, tx, 100, "Trying")
	inv := Invite{CallID: callID(req), ChannelID: req.Recipient.User, SDP: req.Body()}
	if h := req.GetHeader("Subject"); h != nil {
		inv.Subject = h.Value()
	}
	if f := req.From(); f != nil {
		inv.From = f.Address.User
	}
	answer, err := s.d.media.Invite(s.ctx, inv)
	if err != nil {
		code, reason := 488, "Not Acceptable Here"
		if se, ok := err.(*StatusError); ok {
			code, reason = se.Code, se.Reason
		}
		s.respond(req, tx, code, reason)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", answer)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", sip.GenerateTagN(16))
	}
	contact := s.contact
	res.AppendHeader(&contact)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	if err := tx.Respond(res); err != nil {
		s.d.log.Warn("INVITE answer not sent", "call", inv.CallID, "error", err)
	}
}

func (s *session) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if s.d.media != nil {
		s.d.media.Ack(s.ctx, callID(req))
	}
}

func (s *session) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if s.d.media == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.respond(req, tx, 200, "OK")
	s.d.media.Bye(s.ctx, callID(req))
}

func (s *session) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	if s.d.media == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	if err := s.d.media.Info(s.ctx, callID(req), ct, req.Body()); err != nil {
		code, reason := 400, "Bad Request"
		if se, ok := err.(*StatusError); ok {
			code, reason = se.Code, se.Reason
		}
		s.respond(req, tx, code, reason)
		return
	}
	s.respond(req, tx, 200, "OK")
}

func callID(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
}
