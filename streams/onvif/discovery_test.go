package onvif

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// camera is what a responder answers with.
type camera struct {
	endpoint, xaddr, name, hardware, location string
}

// responder is a WS-Discovery target in the test: it reads Probes from
// conn and answers each NetworkVideoTransmitter probe with one ProbeMatch
// per camera, unicast to the prober, as real cameras do. Probes for other
// types are ignored. It counts the probes it saw.
func responder(t *testing.T, conn *net.UDPConn, cams ...camera) *atomic.Int32 {
	t.Helper()
	var probes atomic.Int32
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			if !strings.Contains(msg, "discovery/Probe<") || !strings.Contains(msg, "NetworkVideoTransmitter") {
				continue
			}
			probes.Add(1)
			id := between(msg, "MessageID>", "</")
			for _, c := range cams {
				out, _ := net.DialUDP("udp4", nil, from)
				out.Write([]byte(probeMatch(id, c)))
				out.Close()
			}
		}
	}()
	return &probes
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func probeMatch(relatesTo string, c camera) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<SOAP-ENV:Header><wsa:MessageID>uuid:%d</wsa:MessageID><wsa:RelatesTo>%s</wsa:RelatesTo>
<wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header>
<SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>%s</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/%s onvif://www.onvif.org/hardware/%s onvif://www.onvif.org/location/%s</d:Scopes>
<d:XAddrs>%s</d:XAddrs><d:MetadataVersion>10</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
		time.Now().UnixNano(), relatesTo, c.endpoint, c.name, c.hardware, c.location, c.xaddr)
}

var cams = []camera{
	{"urn:uuid:2f1e0001-0000-4000-8000-000000000001", "http://192.168.1.64/onvif/device_service", "North%20Gate", "DS-2CD2143", "village/north"},
	{"urn:uuid:2f1e0001-0000-4000-8000-000000000002", "http://192.168.1.65:8080/onvif/device_service http://[fe80::1]/onvif/device_service", "Yard", "IPC-HFW", "village/yard"},
}

func checkFound(t *testing.T, got []Device) {
	t.Helper()
	if len(got) != 2 {
		t.Fatalf("found %d devices, want 2 (deduplicated): %+v", len(got), got)
	}
	a, b := got[0], got[1]
	if a.Host != "192.168.1.64" || a.Name != "North Gate" || a.Hardware != "DS-2CD2143" || a.Location != "village/north" {
		t.Errorf("first device %+v", a)
	}
	if a.Endpoint != cams[0].endpoint || len(a.XAddrs) != 1 || a.SuggestedRTSP() != "rtsp://192.168.1.64:554/" {
		t.Errorf("first device %+v", a)
	}
	if b.Host != "192.168.1.65" || b.Name != "Yard" || len(b.XAddrs) != 2 {
		t.Errorf("second device %+v", b)
	}
}

// TestDiscoverUnicast: the Probe goes to a responder on 127.0.0.1 (the
// documented unicast Target); two probes are sent, each answered, and the
// answers are deduplicated by endpoint reference.
func TestDiscoverUnicast(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	probes := responder(t, conn, cams...)
	start := time.Now()
	got, err := Discover(context.Background(), Options{Target: conn.LocalAddr().String(), Timeout: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 550*time.Millisecond || el > 2*time.Second {
		t.Errorf("discovery took %v with a 600 ms timeout", el)
	}
	if probes.Load() != 2 {
		t.Errorf("responder saw %d probes, want 2", probes.Load())
	}
	checkFound(t, got)
	if got[0].From != "127.0.0.1" {
		t.Errorf("from %q", got[0].From)
	}
}

// TestDiscoverNobody: no answer is an empty list, not an error.
func TestDiscoverNobody(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	responder(t, conn) // reads probes, answers nothing
	got, err := Discover(context.Background(), Options{Target: conn.LocalAddr().String(), Timeout: 300 * time.Millisecond})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v", got, err)
	}
}

// TestDiscoverMulticast sends the real Probe to 239.255.255.250:3702 on a
// loopback interface with multicast on, inside a fresh network namespace
// (the test re-runs itself under `unshare -n`; without root, in a user
// namespace of its own, `unshare -r -n`); a responder joined to the group
// answers.
func TestDiscoverMulticast(t *testing.T) {
	if os.Getenv("VIGIL_ONVIF_NETNS") != "1" {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Fatal("no unshare (util-linux)")
		}
		if _, err := exec.LookPath("ip"); err != nil {
			t.Fatal("no ip (make deps installs iproute2)")
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		script := `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$0" -test.run='^TestDiscoverMulticast$' -test.v`
		ns := []string{"-n"}
		if os.Geteuid() != 0 {
			ns = []string{"-r", "-n"} // needs unprivileged user namespaces (Debian's default)
		}
		cmd := exec.Command("unshare", append(ns, "--", "sh", "-c", script, exe)...)
		cmd.Env = append(os.Environ(), "VIGIL_ONVIF_NETNS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a network namespace:\n%s", out)
		if err != nil {
			t.Fatalf("namespaced run: %v", err)
		}
		if !strings.Contains(string(out), "--- PASS: TestDiscoverMulticast") {
			t.Fatal("namespaced run did not pass")
		}
		return
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	group, _ := net.ResolveUDPAddr("udp4", DefaultTarget)
	conn, err := net.ListenMulticastUDP("udp4", lo, group)
	if err != nil {
		t.Fatal(err)
	}
	probes := responder(t, conn, cams...)
	got, err := Discover(context.Background(), Options{Interface: "lo", Timeout: 500 * time.Millisecond, Repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	if probes.Load() != 1 {
		t.Errorf("responder saw %d probes, want 1", probes.Load())
	}
	checkFound(t, got)
}

func TestParseProbeMatches(t *testing.T) {
	msg := probeMatch("uuid:abc", cams[0])
	got, err := ParseProbeMatches([]byte(msg), "uuid:abc")
	if err != nil || len(got) != 1 || got[0].Name != "North Gate" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ParseProbeMatches([]byte(msg), "uuid:other"); err == nil {
		t.Error("an answer to another probe was accepted")
	}
	if _, err := ParseProbeMatches(ProbeMessage("uuid:abc", "dn:NetworkVideoTransmitter"), ""); err == nil {
		t.Error("a Probe was parsed as a ProbeMatches")
	}
	// WS-Discovery 1.1 (2009/01) namespaces and no RelatesTo.
	v11 := `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://www.w3.org/2005/08/addressing" xmlns:d="http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01">
<e:Header><w:Action>http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01/ProbeMatches</w:Action></e:Header>
<e:Body><d:ProbeMatches><d:ProbeMatch><w:EndpointReference><w:Address>urn:uuid:x</w:Address></w:EndpointReference>
<d:XAddrs>http://10.0.0.9/onvif/device_service</d:XAddrs></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>`
	got, err = ParseProbeMatches([]byte(v11), "uuid:abc")
	if err != nil || len(got) != 1 || got[0].Host != "10.0.0.9" {
		t.Fatalf("v1.1: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "GET / HTTP/1.1\r\n\r\n", "<a>", "<Envelope><Body><ProbeMatches></ProbeMatches></Body></Envelope>"} {
		if _, err := ParseProbeMatches([]byte(bad), ""); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseProbeMatches(f *testing.F) {
	f.Add([]byte(probeMatch("uuid:abc", cams[0])))
	f.Add([]byte(probeMatch("uuid:abc", cams[1])))
	f.Add(ProbeMessage("uuid:abc", "dn:NetworkVideoTransmitter"))
	f.Add([]byte("<Envelope><Body><ProbeMatches><ProbeMatch><XAddrs>http://%zz/</XAddrs><Scopes>onvif://www.onvif.org/name/%</Scopes></ProbeMatch></ProbeMatches></Body></Envelope>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseProbeMatches(data, "uuid:abc")
		if err != nil {
			if len(got) != 0 {
				t.Fatal("devices returned with an error")
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no devices and no error")
		}
		for _, d := range got {
			if d.Endpoint == "" && len(d.XAddrs) == 0 {
				t.Fatalf("empty device %+v", d)
			}
			_ = d.SuggestedRTSP()
		}
	})
}
