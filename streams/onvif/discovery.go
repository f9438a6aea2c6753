// Package onvif finds cameras on the installer's LAN with WS-Discovery, the
// way ONVIF clients do: a SOAP Probe for dn:NetworkVideoTransmitter sent to
// the multicast group 239.255.255.250:3702, and every ProbeMatch that
// answers within the timeout, deduplicated by endpoint reference. Scopes
// become the camera's name, hardware and location.
package onvif

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"
)

// DefaultTarget is the WS-Discovery multicast group and port.
const DefaultTarget = "239.255.255.250:3702"

// Options configures Discover.
type Options struct {
	// Target is where the Probe is sent: DefaultTarget when empty. Tests
	// and scripted installs may give a unicast host:port instead (a camera
	// that is known but not on this subnet answers a unicast Probe too).
	Target string
	// Interface sends the multicast Probe out of this interface (by name,
	// e.g. "eth0"); empty lets the routing table choose.
	Interface string
	// Timeout is how long to collect answers. Default 3 s.
	Timeout time.Duration
	// Types is the Probe's type filter; default "dn:NetworkVideoTransmitter".
	Types string
	// Repeat sends the Probe this many times, spread over the first half of
	// the timeout, as UDP may drop one (default 2).
	Repeat int
}

// Device is one camera that answered.
type Device struct {
	Endpoint string   `json:"endpoint"` // endpoint reference, e.g. urn:uuid:…
	XAddrs   []string `json:"xaddrs"`   // ONVIF device service URLs
	Types    []string `json:"types,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	Name     string   `json:"name,omitempty"`
	Hardware string   `json:"hardware,omitempty"`
	Location string   `json:"location,omitempty"`
	// Host is the camera's address, from its first XAddr (else the UDP
	// source), for building an RTSP URL to probe.
	Host string `json:"host"`
	From string `json:"from"` // UDP source of the first answer
}

// SuggestedRTSP is the URL installers try first: rtsp://host:554/.
func (d Device) SuggestedRTSP() string {
	return "rtsp://" + net.JoinHostPort(d.Host, "554") + "/"
}

// Discover sends a Probe and returns the cameras that answered before the
// timeout or ctx ended, sorted by host.
func Discover(ctx context.Context, opt Options) ([]Device, error) {
	opt = opt.withDefaults()
	dst, err := net.ResolveUDPAddr("udp4", opt.Target)
	if err != nil {
		return nil, fmt.Errorf("onvif: target %q: %w", opt.Target, err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("onvif: %w", err)
	}
	defer conn.Close()
	if opt.Interface != "" && dst.IP.IsMulticast() {
		if err := multicastInterface(conn, opt.Interface); err != nil {
			return nil, err
		}
	}
	id := "uuid:" + newUUID()
	msg := ProbeMessage(id, opt.Types)

	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	sendErr := sendProbes(ctx, conn, dst, msg, opt.Timeout/2/time.Duration(opt.Repeat), opt.Repeat)
	found, err := collect(ctx, conn, id)
	if err != nil {
		return nil, err
	}
	if err := <-sendErr; err != nil && len(found) == 0 {
		return nil, fmt.Errorf("onvif: sending the probe to %s: %w", opt.Target, err)
	}
	return sortedDevices(found), nil
}

func (opt Options) withDefaults() Options {
	if opt.Target == "" {
		opt.Target = DefaultTarget
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 3 * time.Second
	}
	if opt.Types == "" {
		opt.Types = "dn:NetworkVideoTransmitter"
	}
	if opt.Repeat <= 0 {
		opt.Repeat = 2
	}
	return opt
}

// sendProbes sends msg to dst repeat times, gap apart, until ctx ends,
// and then the first send error (or nil) on the channel it returns.
func sendProbes(ctx context.Context, conn *net.UDPConn, dst *net.UDPAddr, msg []byte, gap time.Duration, repeat int) <-chan error {
	sendErr := make(chan error, 1)
	go func() {
		var first error
		for i := range repeat {
			if i > 0 {
				select {
				case <-ctx.Done():
					sendErr <- first
					return
				case <-time.After(gap):
				}
			}
			if _, err := conn.WriteToUDP(msg, dst); err != nil && first == nil {
				first = err
			}
		}
		sendErr <- first
	}()
	return sendErr
}

// collect reads the answers to the Probe with message ID id until ctx
// ends or the read times out, keyed by endpoint reference (else by
// XAddrs), merging the XAddrs of repeated answers.
func collect(ctx context.Context, conn *net.UDPConn, id string) (map[string]*Device, error) {
	found := map[string]*Device{}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return found, nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return found, nil
			}
			return nil, fmt.Errorf("onvif: %w", err)
		}
		matches, err := ParseProbeMatches(buf[:n], id)
		if err != nil {
			continue // not for us, or not WS-Discovery
		}
		for _, d := range matches {
			d.From = from.IP.String()
			if d.Host == "" {
				d.Host = d.From
			}
			key := d.Endpoint
			if key == "" {
				key = strings.Join(d.XAddrs, " ")
			}
			if prev, ok := found[key]; ok {
				prev.XAddrs = union(prev.XAddrs, d.XAddrs)
				continue
			}
			found[key] = &d
		}
	}
}

// sortedDevices lists found by host, then endpoint.
func sortedDevices(found map[string]*Device) []Device {
	out := make([]Device, 0, len(found))
	for _, d := range found {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out
}

func union(a, b []string) []string {
	for _, x := range b {
		seen := false
		for _, y := range a {
			seen = seen || x == y
		}
		if !seen {
			a = append(a, x)
		}
	}
	return a
}

// multicastInterface makes conn send multicast out of the named interface.
func multicastInterface(conn *net.UDPConn, name string) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("onvif: interface %q: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return fmt.Errorf("onvif: interface %q: %w", name, err)
	}
	var ip4 net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ip4 = n.IP.To4()
			break
		}
	}
	if ip4 == nil {
		return fmt.Errorf("onvif: interface %q has no IPv4 address", name)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("onvif: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInet4Addr(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, [4]byte(ip4))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("onvif: sending on %q: %w", name, err)
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ProbeMessage is the SOAP Probe with the given MessageID and types.
func ProbeMessage(messageID, types string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"` +
		` xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">` +
		`<s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>`)
	xml.EscapeText(&b, []byte(messageID))
	b.WriteString(`</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>` +
		`<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>` +
		`<s:Body><d:Probe><d:Types>`)
	xml.EscapeText(&b, []byte(types))
	b.WriteString(`</d:Types></d:Probe></s:Body></s:Envelope>`)
	return b.Bytes()
}

// envelope is the part of a SOAP envelope discovery needs; element names
// are matched by local name, so both WS-Discovery 2005/04 and 2009/01
// namespaces parse.
type envelope struct {
	XMLName xml.Name `xml:"Envelope"`
	Header  struct {
		Action    string `xml:"Action"`
		MessageID string `xml:"MessageID"`
		RelatesTo string `xml:"RelatesTo"`
	} `xml:"Header"`
	Body struct {
		Probe *struct {
			Types string `xml:"Types"`
		} `xml:"Probe"`
		ProbeMatches *struct {
			Matches []struct {
				Endpoint struct {
					Address string `xml:"Address"`
				} `xml:"EndpointReference"`
				Types  string `xml:"Types"`
				Scopes string `xml:"Scopes"`
				XAddrs string `xml:"XAddrs"`
			} `xml:"ProbeMatch"`
		} `xml:"ProbeMatches"`
	} `xml:"Body"`
}

// ErrNotProbeMatches means a datagram is not a ProbeMatches answer (to the
// given probe).
var ErrNotProbeMatches = errors.New("onvif: not a ProbeMatches answer")

// ParseProbeMatches reads a ProbeMatches datagram. When probeID is not
// empty, an answer that relates to another probe is refused (answers
// without RelatesTo are accepted: some cameras leave it out).
func ParseProbeMatches(data []byte, probeID string) ([]Device, error) {
	if len(data) > 1<<20 {
		return nil, ErrNotProbeMatches
	}
	var env envelope
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = false
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotProbeMatches, err)
	}
	if env.Body.ProbeMatches == nil {
		return nil, ErrNotProbeMatches
	}
	if rel := strings.TrimSpace(env.Header.RelatesTo); probeID != "" && rel != "" && rel != probeID {
		return nil, fmt.Errorf("%w: relates to %q", ErrNotProbeMatches, rel)
	}
	var out []Device
	for _, m := range env.Body.ProbeMatches.Matches {
		d := Device{
			Endpoint: strings.TrimSpace(m.Endpoint.Address),
			XAddrs:   strings.Fields(m.XAddrs),
			Types:    strings.Fields(m.Types),
			Scopes:   strings.Fields(m.Scopes),
		}
		if d.Endpoint == "" && len(d.XAddrs) == 0 {
			continue
		}
		for _, s := range d.Scopes {
			switch k, v := scope(s); k {
			case "name":
				d.Name = v
			case "hardware":
				d.Hardware = v
			case "location":
				if d.Location == "" {
					d.Location = v
				} else {
					d.Location += ", " + v
				}
			}
		}
		for _, x := range d.XAddrs {
			if u, err := url.Parse(x); err == nil && u.Hostname() != "" {
				d.Host = u.Hostname()
				break
			}
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no match", ErrNotProbeMatches)
	}
	return out, nil
}

// scope splits onvif://www.onvif.org/<kind>/<value…> into kind and the
// unescaped value.
func scope(s string) (string, string) {
	const prefix = "onvif://www.onvif.org/"
	if !strings.HasPrefix(strings.ToLower(s), prefix) {
		return "", ""
	}
	rest := s[len(prefix):]
	kind, val, ok := strings.Cut(rest, "/")
	if !ok {
		return "", ""
	}
	if v, err := url.PathUnescape(val); err == nil {
		val = v
	}
	return strings.ToLower(kind), val
}
