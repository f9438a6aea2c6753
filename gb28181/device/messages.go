package device

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// splitFor picks how list answers are cut: small bodies over UDP, where a
// SIP message must fit one datagram under sipgo's 1300-byte limit.
func splitFor(network string) manscdp.Split {
	if network == "UDP" {
		return manscdp.UDPSplit
	}
	return manscdp.TCPSplit
}

func keepaliveBody(deviceID string, sn uint32, ok bool) ([]byte, error) {
	return manscdp.Keepalive(manscdp.Header{SN: sn, DeviceID: deviceID, Charset: manscdp.GB2312}, ok)
}

func (s *session) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if err := tx.Respond(res); err != nil {
		s.d.log.Debug("respond", "code", code, "error", err)
	}
}

// onMessage answers the platform's MANSCDP MESSAGEs: 200 OK at once, then
// the Response MESSAGE(s) to the platform, as the standard's flow
// (9.5.2) asks.
func (s *session) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	d := s.d
	if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(ct.Value()), ContentType) {
		s.respond(req, tx, 415, "Unsupported Media Type")
		return
	}
	m, err := manscdp.Parse(req.Body())
	if err != nil {
		d.m.queries.WithLabelValues("invalid").Inc()
		d.log.Warn("platform MESSAGE not understood", "error", err, "from", req.Source())
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	switch m.Root {
	case manscdp.RootNotify, manscdp.RootResponse:
		s.respond(req, tx, 200, "OK")
		return
	case manscdp.RootControl:
		s.onControl(req, tx, m)
		return
	}
	channels := d.prov.Channels()
	var ch *Channel
	if m.DeviceID != d.cfg.DeviceID {
		for i := range channels {
			if channels[i].ID == m.DeviceID {
				ch = &channels[i]
			}
		}
		if ch == nil {
			s.respond(req, tx, 404, "Not Found")
			return
		}
	}
	h := manscdp.Header{SN: m.SN, DeviceID: m.DeviceID, Charset: m.Charset}
	bodies, refused, err := s.answer(m, h, channels, ch)
	if refused {
		s.respond(req, tx, 501, "Not Implemented")
		return
	}
	d.m.queries.WithLabelValues(m.CmdType).Inc()
	if err != nil {
		d.log.Error("cannot answer platform query", "cmd", m.CmdType, "error", err)
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	s.respond(req, tx, 200, "OK")
	s.sendAnswers(m, bodies)
}

// answer builds the Response bodies of a query about the device (ch nil)
// or one of its channels; refused: the device does not answer it (501).
func (s *session) answer(m *manscdp.Message, h manscdp.Header, channels []Channel, ch *Channel) (bodies [][]byte, refused bool, err error) {
	d := s.d
	switch m.CmdType {
	case manscdp.CmdCatalog:
		bodies, err = manscdp.CatalogResponses(h, d.catalogItems(channels), s.split)
	case manscdp.CmdDeviceInfo:
		info := manscdp.DeviceInfo{DeviceName: d.cfg.Name, Manufacturer: d.cfg.Manufacturer, Model: d.cfg.Model, Firmware: d.cfg.Firmware, Channel: len(channels)}
		if ch != nil {
			info = manscdp.DeviceInfo{DeviceName: ch.Name, Manufacturer: or(ch.Manufacturer, d.cfg.Manufacturer), Model: or(ch.Model, d.cfg.Model), Firmware: d.cfg.Firmware, Channel: 1}
		}
		var b []byte
		b, err = manscdp.DeviceInfoResponse(h, info)
		bodies = [][]byte{b}
	case manscdp.CmdDeviceStatus:
		var b []byte
		b, err = manscdp.DeviceStatusResponse(h, d.deviceStatus(channels, ch))
		bodies = [][]byte{b}
	case manscdp.CmdRecordInfo:
		rec, ok := d.prov.(Records)
		if !ok || ch == nil {
			d.m.queries.WithLabelValues("RecordInfo").Inc()
			return nil, true, nil
		}
		bodies, err = d.recordInfo(s.ctx, rec, h, m, ch, s.split)
	default:
		d.m.queries.WithLabelValues("other").Inc()
		d.log.Info("platform query not supported", "cmd", m.CmdType)
		return nil, true, nil
	}
	return bodies, false, err
}

// sendAnswers sends a query's Response bodies to the platform, one
// MESSAGE each, stopping at the first it does not accept.
func (s *session) sendAnswers(m *manscdp.Message, bodies [][]byte) {
	d := s.d
	for i, b := range bodies {
		res, err := s.sendMessage(s.ctx, b)
		if err != nil || res.StatusCode >= 300 {
			d.m.answers.WithLabelValues("failed").Inc()
			reason := ""
			if res != nil {
				reason = res.StartLine()
			}
			d.log.Warn("answer not accepted by the platform", "cmd", m.CmdType, "sn", m.SN, "part", i+1, "of", len(bodies), "error", err, "answer", reason)
			return
		}
		d.m.answers.WithLabelValues("ok").Inc()
	}
	d.log.Debug("answered platform query", "cmd", m.CmdType, "sn", m.SN, "messages", len(bodies))
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (d *Device) catalogItems(channels []Channel) []manscdp.CatalogItem {
	items := make([]manscdp.CatalogItem, 0, len(channels))
	for _, c := range channels {
		st := manscdp.StatusOff
		if c.Online {
			st = manscdp.StatusOn
		}
		items = append(items, manscdp.CatalogItem{
			DeviceID: c.ID, Name: c.Name,
			Manufacturer: or(c.Manufacturer, d.cfg.Manufacturer), Model: or(c.Model, d.cfg.Model), Owner: "Owner",
			CivilCode: or(c.CivilCode, manscdp.Domain(d.cfg.DeviceID)), Address: or(c.Address, d.cfg.Name),
			Parental: 0, ParentID: d.cfg.DeviceID, SafetyWay: 0, RegisterWay: 1, Secrecy: 0, Status: st,
			Longitude: c.Longitude, Latitude: c.Latitude,
		})
	}
	return items
}

func (d *Device) deviceStatus(channels []Channel, ch *Channel) manscdp.DeviceStatus {
	h := d.prov.Health()
	st := manscdp.DeviceStatus{Online: true, OK: h.OK, Reason: h.Reason, Encoding: h.Encoding, Recording: h.Recording, Time: time.Now(), Loc: d.loc}
	if ch != nil {
		st.Online = ch.Online
		if ch.Kind == KindAlarm {
			st.Alarms = []manscdp.AlarmStatus{{DeviceID: ch.ID, DutyStatus: duty(*ch)}}
		}
		return st
	}
	for _, c := range channels {
		if c.Kind == KindAlarm {
			st.Alarms = append(st.Alarms, manscdp.AlarmStatus{DeviceID: c.ID, DutyStatus: duty(c)})
		}
	}
	return st
}

func duty(c Channel) string {
	switch {
	case c.Alarming:
		return manscdp.DutyAlarm
	case c.Armed:
		return manscdp.DutyOnDuty
	}
	return manscdp.DutyOffDuty
}

func (d *Device) recordInfo(ctx context.Context, rec Records, h manscdp.Header, m *manscdp.Message, ch *Channel, split manscdp.Split) ([][]byte, error) {
	start, err := manscdp.ParseTime(m.StartTime, d.loc)
	if err != nil {
		return nil, err
	}
	end, err := manscdp.ParseTime(m.EndTime, d.loc)
	if err != nil {
		return nil, err
	}
	items, err := rec.Records(ctx, ch.ID, start, end, or(m.Type, manscdp.RecordAll))
	if err != nil {
		return nil, err
	}
	return manscdp.RecordInfoResponses(h, ch.Name, items, split)
}

func (d *Device) networkName() string {
	if d.cfg.Transport == TCP {
		return "TCP"
	}
	return "UDP"
}
