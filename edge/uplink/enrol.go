package uplink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// EnrolOptions say which central to enrol with and how.
type EnrolOptions struct {
	Central  string // https://host:port of central's edge hub
	Token    string // from the administrator: vigil-enrol-1.<secret>.<pin>
	Software string
	Hostname string
	// Dial, if set, replaces the network dialer (benchmarks route edges
	// through a proxy that can cut the link).
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	Timeout time.Duration // default 30 s
}

// Enroll makes a new key pair, proves it to central with the one-time
// token over a TLS connection pinned to the key in the token, and returns
// the credential to save. The private key never leaves this box.
func Enroll(ctx context.Context, o EnrolOptions) (Credential, error) {
	tok, err := wire.ParseEnrolToken(o.Token)
	if err != nil {
		return Credential{}, err
	}
	host, err := centralHost(o.Central)
	if err != nil {
		return Credential{}, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Credential{}, err
	}
	req := wire.EnrolRequest{Secret: tok.Secret, PublicKey: pub, Software: o.Software, Hostname: o.Hostname}
	req.Signature = ed25519.Sign(priv, req.SigningBytes())
	body, err := json.Marshal(req)
	if err != nil {
		return Credential{}, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: pinnedTLS(tok.Pin), DialContext: o.Dial, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.Timeout}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+host+wire.EnrolPath, bytes.NewReader(body))
	if err != nil {
		return Credential{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return Credential{}, fmt.Errorf("enrol at %s: %w", host, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(rb, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(rb))
		}
		return Credential{}, fmt.Errorf("enrol at %s: central refused (%s): %s", host, resp.Status, e.Error)
	}
	var er wire.EnrolResponse
	if err := json.Unmarshal(rb, &er); err != nil || er.EdgeID == "" {
		return Credential{}, fmt.Errorf("enrol at %s: unreadable answer: %.200s", host, rb)
	}
	return Credential{Version: credentialVersion, EdgeID: er.EdgeID, SiteID: er.SiteID, Central: "https://" + host,
		CentralPin: wire.FormatPin(tok.Pin), PrivateKey: priv, EnrolledAt: time.Now().UTC(), CentralKey: er.AccessKey}, nil
}
