// Package media is the media side of GB/T 28181 on the device: it reads
// the platform's INVITE SDP offer, writes the answer, and sends a camera's
// video as an MPEG program stream (streams/ps) over RTP (RFC 3550) on UDP
// or on TCP (RFC 4571 framing, RFC 4145 roles). It knows nothing of SIP:
// the SIP side hands it the offer's body and sends back Answer's bytes.
package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// Transport is how this device sends a stream.
type Transport int

// Transports.
const (
	UDP        Transport = iota // RTP/AVP: datagrams to the platform's port
	TCPActive                   // TCP/RTP/AVP, we connect to the platform (it offered setup:passive)
	TCPPassive                  // TCP/RTP/AVP, we listen and the platform connects (it offered setup:active)
)

func (t Transport) String() string {
	switch t {
	case UDP:
		return "udp"
	case TCPActive:
		return "tcp-active"
	case TCPPassive:
		return "tcp-passive"
	}
	return fmt.Sprintf("Transport(%d)", int(t))
}

// Session names of GB/T 28181-2016 §9.2 (s= of the INVITE SDP).
const (
	Play     = "Play"     // live video
	Playback = "Playback" // recorded video at normal speed, the time range in t=
	Download = "Download" // recorded video as fast as a=downloadspeed says
)

// Errors of ParseOffer.
var (
	ErrNoVideo   = errors.New("media: offer has no video stream of PS/90000 over RTP/AVP or TCP/RTP/AVP")
	ErrBadSSRC   = errors.New("media: y= is not an SSRC of up to 10 decimal digits that fits 32 bits")
	ErrNoSSRC    = errors.New("media: offer has no y= line (SSRC)")
	ErrSession   = errors.New("media: s= is not Play, Playback or Download")
	ErrBadAddr   = errors.New("media: c= is not an IP address")
	ErrBadSetup  = errors.New("media: a=setup is not active, passive or actpass")
	ErrDuplicate = errors.New("media: a GB line (y=, f=, u=) appears twice")
)

// Offer is what this device needs from the platform's SDP offer.
type Offer struct {
	Session     string     // Play, Playback or Download
	Origin      string     // o= username: the ID of whoever made the offer
	Addr        netip.Addr // c= of the video (media level, else session level)
	Port        int        // m=video port: where the platform receives (UDP, TCP active)
	Transport   Transport  // ours: the inverse of the platform's a=setup for TCP
	PayloadType uint8      // the one its rtpmap names PS/90000 (usually 96)
	SSRC        uint32     // y= as a number: the RTP SSRC to send with
	SSRCText    string     // y= exactly as sent, echoed in the answer
	Channel     string     // u= before ':' (Playback, Download): the channel ID
	URIParam    string     // u= after ':' (GB: 0 or the recording type)
	Start, Stop time.Time  // t= for Playback and Download, UTC; zero for "0"
	Speed       int        // a=downloadspeed (Download), 0 when absent
	Format      string     // f= as sent ("v/codec/res/fps/rc/bitrate a/..."), may be empty
}

// gbLines are the lines GB/T 28181 adds to SDP that pion/sdp (RFC 4566
// strict) refuses: y= and f= are not SDP keys at all, and u= holds
// "channelID:param", which pion parses as a URL and rejects ("first path
// segment in URL cannot contain colon"). They are cut out, by key, before
// pion parses the rest; they may sit anywhere in the offer.
type gbLines struct {
	y, f, u          string
	hasY, hasF, hasU bool
}

// splitGB takes the GB lines out of an SDP body and returns the rest with
// CRLF line ends (platforms send CRLF or LF).
func splitGB(body string) (string, gbLines, error) {
	var g gbLines
	var rest strings.Builder
	for line := range strings.SplitSeq(body, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		var dst *string
		var has *bool
		switch {
		case strings.HasPrefix(line, "y="):
			dst, has = &g.y, &g.hasY
		case strings.HasPrefix(line, "f="):
			dst, has = &g.f, &g.hasF
		case strings.HasPrefix(line, "u="):
			dst, has = &g.u, &g.hasU
		default:
			rest.WriteString(line)
			rest.WriteString("\r\n")
			continue
		}
		if *has {
			return "", g, fmt.Errorf("%w: %q", ErrDuplicate, line)
		}
		*dst, *has = strings.TrimSpace(line[2:]), true
	}
	return rest.String(), g, nil
}

// ParseOffer reads a platform's INVITE SDP (GB/T 28181-2016 §9.2 and
// Annex G): the first video stream whose rtpmap is PS/90000 (MP2P/90000 is
// taken too), over UDP or TCP.
func ParseOffer(body []byte) (*Offer, error) {
	rest, g, err := splitGB(string(body))
	if err != nil {
		return nil, err
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(rest); err != nil {
		return nil, fmt.Errorf("media: offer: %w", err)
	}
	o := &Offer{Origin: sd.Origin.Username, Format: g.f}
	for _, s := range []string{Play, Playback, Download} {
		if strings.EqualFold(string(sd.SessionName), s) {
			o.Session = s
		}
	}
	if o.Session == "" {
		return nil, fmt.Errorf("%w: %q", ErrSession, sd.SessionName)
	}

	if !g.hasY {
		return nil, ErrNoSSRC
	}
	ssrc, err := strconv.ParseUint(g.y, 10, 32)
	if err != nil || len(g.y) > 10 || strings.TrimLeft(g.y, "0123456789") != "" {
		return nil, fmt.Errorf("%w: %q", ErrBadSSRC, g.y)
	}
	o.SSRC, o.SSRCText = uint32(ssrc), g.y
	if g.hasU {
		o.Channel, o.URIParam, _ = strings.Cut(g.u, ":")
	}

	md, err := o.videoStream(&sd)
	if err != nil {
		return nil, err
	}
	if o.Transport != UDP {
		if o.Transport, err = tcpRole(&sd, md); err != nil {
			return nil, err
		}
	}

	if v, ok := md.Attribute("downloadspeed"); ok {
		if o.Speed, err = strconv.Atoi(strings.TrimSpace(v)); err != nil || o.Speed < 0 {
			return nil, fmt.Errorf("media: offer: a=downloadspeed:%s", v)
		}
	}
	if len(sd.TimeDescriptions) > 0 {
		t := sd.TimeDescriptions[0].Timing
		o.Start, o.Stop = gbTime(t.StartTime), gbTime(t.StopTime)
	}
	return o, nil
}

// videoStream picks the offer's first video stream carried as PS over
// RTP (UDP or TCP) and takes its payload type, port, transport and
// address into o.
func (o *Offer) videoStream(sd *sdp.SessionDescription) (*sdp.MediaDescription, error) {
	var md *sdp.MediaDescription
	for _, d := range sd.MediaDescriptions {
		if d.MediaName.Media != "video" {
			continue
		}
		proto := strings.ToUpper(strings.Join(d.MediaName.Protos, "/"))
		if proto != "RTP/AVP" && proto != "TCP/RTP/AVP" {
			continue
		}
		pt, ok := psPayloadType(d)
		if !ok {
			continue
		}
		md, o.PayloadType = d, pt
		if proto == "TCP/RTP/AVP" {
			o.Transport = TCPActive
		}
		break
	}
	if md == nil {
		return nil, ErrNoVideo
	}
	o.Port = md.MediaName.Port.Value
	if o.Port <= 0 || o.Port > 65535 {
		return nil, fmt.Errorf("media: offer: m=video port %d", o.Port)
	}
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return nil, fmt.Errorf("%w: none", ErrBadAddr)
	}
	var err error
	if o.Addr, err = netip.ParseAddr(ci.Address.Address); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrBadAddr, ci.Address.Address)
	}
	return md, nil
}

// tcpRole is our TCP role, the inverse of the platform's a=setup
// (RFC 4145 §4.1). An offer without a=setup (GB/T 28181-2011 platforms)
// listens on the port it gives, so we connect; for actpass we connect as
// well, which also works from behind NAT.
func tcpRole(sd *sdp.SessionDescription, md *sdp.MediaDescription) (Transport, error) {
	setup, ok := md.Attribute("setup")
	if !ok {
		setup, _ = sd.Attribute("setup")
	}
	switch strings.ToLower(strings.TrimSpace(setup)) {
	case "passive", "actpass", "":
		return TCPActive, nil
	case "active":
		return TCPPassive, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrBadSetup, setup)
}

// psPayloadType finds the payload type of d's formats mapped to PS/90000.
func psPayloadType(d *sdp.MediaDescription) (uint8, bool) {
	for _, f := range d.MediaName.Formats {
		for _, a := range d.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			pt, enc, ok := strings.Cut(a.Value, " ")
			if !ok || pt != f {
				continue
			}
			name, rate, _ := strings.Cut(strings.TrimSpace(enc), "/")
			if (strings.EqualFold(name, "PS") || strings.EqualFold(name, "MP2P")) && rate == "90000" {
				n, err := strconv.ParseUint(pt, 10, 7)
				if err == nil {
					return uint8(n), true
				}
			}
		}
	}
	return 0, false
}

// ntpUnixOffset is 1970-01-01 in NTP seconds (RFC 4566 t= times are NTP).
const ntpUnixOffset = 2208988800

// gbTime reads a t= time. GB/T 28181-2016 platforms write Unix seconds
// there; RFC 4566 says NTP seconds. Values from the NTP year 2000 on (Unix
// 2070) are taken as NTP. 0 is "unbounded" (live): the zero time.
func gbTime(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	if v >= ntpUnixOffset+946684800 {
		v -= ntpUnixOffset
	}
	if v > 1<<40 { // beyond any real date; keep time.Unix sane
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}

// AnswerParams are this device's side of the answer.
type AnswerParams struct {
	DeviceID string     // o= username: the channel's GB ID
	Addr     netip.Addr // our media address (c=)
	Port     int        // UDP: the sending socket's port; TCP passive: the listening port; TCP active: ignored (9)
	Format   string     // f= to send, or empty for none
}

// Answer builds this device's SDP answer to o (GB/T 28181-2016 §9.2):
// the same session name and times, one video stream sendonly with the
// offer's PS payload type, our role for TCP (RFC 4145: active answers
// port 9, the discard port, since its own port is not known before it
// connects), a=connection:new, and y= echoing the offer's SSRC.
func (o *Offer) Answer(p AnswerParams) ([]byte, error) {
	if !p.Addr.IsValid() {
		return nil, errors.New("media: answer: no address")
	}
	addrType := "IP4"
	if p.Addr.Is6() && !p.Addr.Is4In6() {
		addrType = "IP6"
	}
	port := p.Port
	proto := []string{"RTP", "AVP"}
	if o.Transport != UDP {
		proto = []string{"TCP", "RTP", "AVP"}
	}
	if o.Transport == TCPActive {
		port = 9
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("media: answer: port %d", port)
	}
	id := p.DeviceID
	if id == "" {
		id = "-"
	}
	pt := strconv.Itoa(int(o.PayloadType))
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{Media: "video", Port: sdp.RangedPort{Value: port}, Protos: proto, Formats: []string{pt}},
		Attributes: []sdp.Attribute{
			sdp.NewPropertyAttribute("sendonly"),
			sdp.NewAttribute("rtpmap", pt+" PS/90000"),
		},
	}
	switch o.Transport {
	case TCPActive:
		md.Attributes = append(md.Attributes, sdp.NewAttribute("setup", "active"), sdp.NewAttribute("connection", "new"))
	case TCPPassive:
		md.Attributes = append(md.Attributes, sdp.NewAttribute("setup", "passive"), sdp.NewAttribute("connection", "new"))
	}
	unix := func(t time.Time) uint64 {
		if t.IsZero() {
			return 0
		}
		return uint64(t.Unix())
	}
	sd := &sdp.SessionDescription{
		Origin: sdp.Origin{Username: id, SessionID: 0, SessionVersion: 0, NetworkType: "IN",
			AddressType: addrType, UnicastAddress: p.Addr.Unmap().String()},
		SessionName: sdp.SessionName(o.Session),
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType,
			Address: &sdp.Address{Address: p.Addr.Unmap().String()}},
		TimeDescriptions:  []sdp.TimeDescription{{Timing: sdp.Timing{StartTime: unix(o.Start), StopTime: unix(o.Stop)}}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	b, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("media: answer: %w", err)
	}
	b = append(b, "y="+o.SSRCText+"\r\n"...)
	if p.Format != "" {
		b = append(b, "f="+p.Format+"\r\n"...)
	}
	return b, nil
}

// SenderConfig is the Config of a Sender for this offer: our transport,
// the platform's address, the offered SSRC and payload type. local is the
// address to bind or listen on (port 0: any).
func (o *Offer) SenderConfig(local netip.AddrPort) Config {
	return Config{Transport: o.Transport, Local: local, Remote: netip.AddrPortFrom(o.Addr, uint16(o.Port)),
		SSRC: o.SSRC, PayloadType: o.PayloadType}
}
