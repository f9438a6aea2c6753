package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
)

// Offers as platforms send them (GB/T 28181-2016 Annex G examples and the
// shapes WVP/ZLMediaKit write): CRLF or LF, y= and f= after the media.
const (
	offerPlayUDP = "v=0\r\n" +
		"o=34020000002000000001 0 0 IN IP4 192.168.1.100\r\n" +
		"s=Play\r\n" +
		"c=IN IP4 192.168.1.100\r\n" +
		"t=0 0\r\n" +
		"m=video 30000 RTP/AVP 96 98 97\r\n" +
		"a=recvonly\r\n" +
		"a=rtpmap:96 PS/90000\r\n" +
		"a=rtpmap:98 H264/90000\r\n" +
		"a=rtpmap:97 MPEG4/90000\r\n" +
		"y=0100000001\r\n" +
		"f=\r\n"
	offerPlayTCPPassive = "v=0\n" +
		"o=34020000002000000001 0 0 IN IP4 10.0.0.5\n" +
		"s=Play\n" +
		"c=IN IP4 10.0.0.5\n" +
		"t=0 0\n" +
		"m=video 30002 TCP/RTP/AVP 96\n" +
		"a=recvonly\n" +
		"a=rtpmap:96 PS/90000\n" +
		"a=setup:passive\n" +
		"a=connection:new\n" +
		"y=0200000123\n"
	offerPlaybackTCPActive = "v=0\r\n" +
		"o=34020000002000000001 0 0 IN IP4 10.0.0.5\r\n" +
		"s=Playback\r\n" +
		"u=34020000001320000001:0\r\n" +
		"c=IN IP4 10.0.0.5\r\n" +
		"t=1765152000 1765155600\r\n" +
		"m=video 30004 TCP/RTP/AVP 96\r\n" +
		"a=recvonly\r\n" +
		"a=rtpmap:96 PS/90000\r\n" +
		"a=setup:active\r\n" +
		"a=connection:new\r\n" +
		"y=1000000002\r\n" +
		"f=v/2/4///a///\r\n"
	offerDownloadNTP = "v=0\r\n" +
		"o=34020000002000000001 0 0 IN IP4 10.0.0.5\r\n" +
		"s=Download\r\n" +
		"u=34020000001320000001:0\r\n" +
		"c=IN IP4 10.0.0.5\r\n" +
		"t=3974140800 3974144400\r\n" + // NTP seconds of the same hour
		"m=video 30006 RTP/AVP 97 96\r\n" +
		"a=recvonly\r\n" +
		"a=rtpmap:96 MP2P/90000\r\n" +
		"a=rtpmap:97 H264/90000\r\n" +
		"a=downloadspeed:4\r\n" +
		"y=1000000003\r\n"
)

func TestParseOffer(t *testing.T) {
	hourStart := time.Date(2025, 12, 8, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		sdp  string
		want Offer
	}{
		{"play-udp", offerPlayUDP, Offer{Session: Play, Origin: "34020000002000000001", Addr: netip.MustParseAddr("192.168.1.100"),
			Port: 30000, Transport: UDP, PayloadType: 96, SSRC: 100000001, SSRCText: "0100000001"}},
		{"play-tcp-passive-platform", offerPlayTCPPassive, Offer{Session: Play, Origin: "34020000002000000001", Addr: netip.MustParseAddr("10.0.0.5"),
			Port: 30002, Transport: TCPActive, PayloadType: 96, SSRC: 200000123, SSRCText: "0200000123"}},
		{"playback-tcp-active-platform", offerPlaybackTCPActive, Offer{Session: Playback, Origin: "34020000002000000001",
			Addr: netip.MustParseAddr("10.0.0.5"), Port: 30004, Transport: TCPPassive, PayloadType: 96, SSRC: 1000000002,
			SSRCText: "1000000002", Channel: "34020000001320000001", URIParam: "0", Start: hourStart, Stop: hourStart.Add(time.Hour),
			Format: "v/2/4///a///"}},
		{"download-ntp", offerDownloadNTP, Offer{Session: Download, Origin: "34020000002000000001", Addr: netip.MustParseAddr("10.0.0.5"),
			Port: 30006, Transport: UDP, PayloadType: 96, SSRC: 1000000003, SSRCText: "1000000003",
			Channel: "34020000001320000001", URIParam: "0", Start: hourStart, Stop: hourStart.Add(time.Hour), Speed: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer([]byte(tc.sdp))
			if err != nil {
				t.Fatal(err)
			}
			if *o != tc.want {
				t.Fatalf("got  %+v\nwant %+v", *o, tc.want)
			}
		})
	}
}

func TestParseOfferErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sdp      string
		want     error
		contains string
	}{
		{"no-y", strings.Replace(offerPlayUDP, "y=0100000001\r\n", "", 1), ErrNoSSRC, ""},
		{"y-too-big", strings.Replace(offerPlayUDP, "y=0100000001", "y=9999999999", 1), ErrBadSSRC, ""},
		{"y-not-digits", strings.Replace(offerPlayUDP, "y=0100000001", "y=+100", 1), ErrBadSSRC, ""},
		{"y-twice", offerPlayUDP + "y=1\r\n", ErrDuplicate, ""},
		{"talk", strings.Replace(offerPlayUDP, "s=Play", "s=Talk", 1), ErrSession, ""},
		{"no-ps", strings.Replace(offerPlayUDP, "96 PS/90000", "96 H265/90000", 1), ErrNoVideo, ""},
		{"audio-only", strings.Replace(offerPlayUDP, "m=video", "m=audio", 1), ErrNoVideo, ""},
		{"hostname", strings.Replace(offerPlayUDP, "c=IN IP4 192.168.1.100", "c=IN IP4 platform.example", 1), ErrBadAddr, ""},
		{"setup", strings.Replace(offerPlayTCPPassive, "setup:passive", "setup:holdconn", 1), ErrBadSetup, ""},
		{"speed", strings.Replace(offerDownloadNTP, "downloadspeed:4", "downloadspeed:x", 1), nil, "downloadspeed"},
		{"not-sdp", "hello", nil, "offer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOffer([]byte(tc.sdp))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err %v, want %v %q", err, tc.want, tc.contains)
			}
		})
	}
}

// The answer is SDP that pion reads back once y=/f= are cut out, with our
// role for each transport (RFC 4145) and the offer's SSRC.
func TestAnswer(t *testing.T) {
	for _, tc := range []struct {
		offer, proto, setup, port string
	}{
		{offerPlayUDP, "RTP/AVP", "", "15060"},
		{offerPlayTCPPassive, "TCP/RTP/AVP", "active", "9"},
		{offerPlaybackTCPActive, "TCP/RTP/AVP", "passive", "15060"},
	} {
		o, err := ParseOffer([]byte(tc.offer))
		if err != nil {
			t.Fatal(err)
		}
		b, err := o.Answer(AnswerParams{DeviceID: "34020000001320000001", Addr: netip.MustParseAddr("192.168.1.64"),
			Port: 15060, Format: "v/2/4///a///"})
		if err != nil {
			t.Fatal(err)
		}
		ans := string(b)
		if !strings.HasSuffix(ans, "y="+o.SSRCText+"\r\nf=v/2/4///a///\r\n") {
			t.Fatalf("answer does not end with y= and f=:\n%s", ans)
		}
		rest, g, err := splitGB(ans)
		if err != nil || g.y != o.SSRCText {
			t.Fatal(err, g)
		}
		var sd sdp.SessionDescription
		if err := sd.UnmarshalString(rest); err != nil {
			t.Fatalf("%v\n%s", err, ans)
		}
		md := sd.MediaDescriptions[0]
		if string(sd.SessionName) != o.Session || sd.ConnectionInformation.Address.Address != "192.168.1.64" ||
			strings.Join(md.MediaName.Protos, "/") != tc.proto || md.MediaName.Formats[0] != "96" {
			t.Fatalf("answer:\n%s", ans)
		}
		if got := strings.Fields(strings.SplitN(strings.SplitN(ans, "m=video ", 2)[1], " ", 2)[0]); got[0] != tc.port {
			t.Fatalf("port %v, want %s", got, tc.port)
		}
		if _, ok := md.Attribute("sendonly"); !ok {
			t.Fatal("no a=sendonly")
		}
		if rtpmap, _ := md.Attribute("rtpmap"); rtpmap != "96 PS/90000" {
			t.Fatalf("rtpmap %q", rtpmap)
		}
		setup, _ := md.Attribute("setup")
		if setup != tc.setup {
			t.Fatalf("setup %q, want %q", setup, tc.setup)
		}
		if len(sd.TimeDescriptions) != 1 || sd.TimeDescriptions[0].Timing.StartTime != uint64(max(o.Start.Unix(), 0)) && !o.Start.IsZero() {
			t.Fatalf("times %+v", sd.TimeDescriptions)
		}
	}
}

func FuzzParseOffer(f *testing.F) {
	for _, s := range []string{offerPlayUDP, offerPlayTCPPassive, offerPlaybackTCPActive, offerDownloadNTP} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseOffer(body)
		if err != nil {
			return
		}
		if o.Port <= 0 || o.Port > 65535 || !o.Addr.IsValid() || o.SSRCText == "" || o.Session == "" {
			t.Fatalf("accepted offer is incomplete: %+v", o)
		}
		// Whatever was accepted can be answered, and the answer reads back.
		b, err := o.Answer(AnswerParams{DeviceID: "34020000001320000001", Addr: netip.MustParseAddr("10.1.2.3"), Port: 4000})
		if err != nil {
			t.Fatal(err)
		}
		rest, g, err := splitGB(string(b))
		if err != nil || g.y != o.SSRCText {
			t.Fatalf("answer's y=: %v %q", err, g.y)
		}
		var sd sdp.SessionDescription
		if err := sd.UnmarshalString(rest); err != nil {
			t.Fatalf("answer does not parse: %v\n%s", err, b)
		}
	})
}
