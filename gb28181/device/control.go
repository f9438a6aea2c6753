package device

import (
	"context"
	"errors"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// The platform's DeviceControl commands that an edge can honour (GB/T
// 28181-2016 A.2.3.1): TeleBoot, GuardCmd (SetGuard, ResetGuard) and
// AlarmCmd (ResetAlarm). Each needs an optional Provider interface below;
// a provider without it gets 501, as do PTZ, record and I-frame commands:
// refusing is honest, a silent 200 is not.

// Rebooter is an optional Provider extension for TeleBoot: the device
// answers 200 first (the standard's flow has no Response to a reboot; the
// device registers again when it is back), then calls Reboot.
type Rebooter interface {
	Reboot(ctx context.Context) error
}

// Guard is an optional Provider extension for GuardCmd: arm (SetGuard)
// or disarm (ResetGuard) one alarm input. A command for the device
// applies to every alarm input.
type Guard interface {
	SetGuard(ctx context.Context, channelID string, armed bool) error
}

// AlarmResetter is an optional Provider extension for AlarmCmd
// ResetAlarm: clear an alarm input's alarm state (it stays armed). A
// command for the device applies to every alarm input.
type AlarmResetter interface {
	ResetAlarm(ctx context.Context, channelID string) error
}

func (s *session) onControl(req *sip.Request, tx sip.ServerTransaction, m *manscdp.Message) {
	d := s.d
	if m.CmdType != manscdp.CmdDeviceCtrl {
		d.log.Info("platform control not supported", "cmd", m.CmdType, "device", m.DeviceID)
		d.m.controls.WithLabelValues("unsupported").Inc()
		s.respond(req, tx, 501, "Not Implemented")
		return
	}
	d.m.queries.WithLabelValues(manscdp.CmdDeviceCtrl).Inc()
	var targets []string // alarm inputs a guard or alarm command is about
	for _, c := range d.prov.Channels() {
		if c.Kind == KindAlarm && (m.DeviceID == d.cfg.DeviceID || m.DeviceID == c.ID) {
			targets = append(targets, c.ID)
		}
	}
	if m.DeviceID != d.cfg.DeviceID && !d.hasChannel(m.DeviceID, KindCamera) && len(targets) == 0 {
		s.respond(req, tx, 404, "Not Found")
		return
	}
	switch {
	case m.TeleBoot != "":
		r, ok := d.prov.(Rebooter)
		if !ok || m.TeleBoot != "Boot" || m.DeviceID != d.cfg.DeviceID {
			s.unsupported(req, tx, m, "TeleBoot "+m.TeleBoot)
			return
		}
		s.respond(req, tx, 200, "OK")
		d.log.Warn("platform asked the device to reboot")
		s.controlDone(r.Reboot(s.ctx), "TeleBoot")
	case m.GuardCmd != "":
		g, ok := d.prov.(Guard)
		if !ok || m.GuardCmd != "SetGuard" && m.GuardCmd != "ResetGuard" {
			s.unsupported(req, tx, m, "GuardCmd "+m.GuardCmd)
			return
		}
		if len(targets) == 0 {
			s.respond(req, tx, 400, "Bad Request") // a camera has no guard
			return
		}
		s.respond(req, tx, 200, "OK")
		var errs []error
		for _, id := range targets {
			errs = append(errs, g.SetGuard(s.ctx, id, m.GuardCmd == "SetGuard"))
		}
		s.controlAnswer(m, errors.Join(errs...))
	case m.AlarmCmd != "":
		a, ok := d.prov.(AlarmResetter)
		if !ok || m.AlarmCmd != "ResetAlarm" {
			s.unsupported(req, tx, m, "AlarmCmd "+m.AlarmCmd)
			return
		}
		if len(targets) == 0 {
			s.respond(req, tx, 400, "Bad Request")
			return
		}
		s.respond(req, tx, 200, "OK")
		var errs []error
		for _, id := range targets {
			errs = append(errs, a.ResetAlarm(s.ctx, id))
		}
		s.controlAnswer(m, errors.Join(errs...))
	default:
		s.unsupported(req, tx, m, "other")
	}
}

func (s *session) unsupported(req *sip.Request, tx sip.ServerTransaction, m *manscdp.Message, what string) {
	s.d.log.Info("platform control not supported", "control", what, "device", m.DeviceID)
	s.d.m.controls.WithLabelValues("unsupported").Inc()
	s.respond(req, tx, 501, "Not Implemented")
}

func (s *session) controlDone(err error, what string) {
	if err != nil {
		s.d.m.controls.WithLabelValues("failed").Inc()
		s.d.log.Error("platform control failed", "control", what, "error", err)
		return
	}
	s.d.m.controls.WithLabelValues("ok").Inc()
}

// controlAnswer sends the Response DeviceControl with the command's
// Result (A.2.6.2) as a MESSAGE to the platform.
func (s *session) controlAnswer(m *manscdp.Message, err error) {
	s.controlDone(err, "DeviceControl")
	body, berr := manscdp.ResultResponse(manscdp.Header{SN: m.SN, DeviceID: m.DeviceID, Charset: m.Charset}, manscdp.CmdDeviceCtrl, err == nil)
	if berr != nil {
		s.d.log.Error("device control answer", "error", berr)
		return
	}
	res, serr := s.sendMessage(s.ctx, body)
	if serr != nil || res.StatusCode >= 300 {
		s.d.m.answers.WithLabelValues("failed").Inc()
		s.d.log.Warn("device control answer not accepted by the platform", "sn", m.SN, "error", serr, "answer", startLine(res))
		return
	}
	s.d.m.answers.WithLabelValues("ok").Inc()
}
