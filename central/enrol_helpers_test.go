package central

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// enrol makes a token at s and spends it through the real enrolment
// endpoint, as `vigil edge enroll` does.
func enrol(t *testing.T, s *Server, id, site string) uplink.Credential {
	t.Helper()
	tok, _, err := s.CreateEnrolmentToken(id, site, "test-admin", time.Hour)
	if err != nil {
		t.Fatalf("token for %s: %v", id, err)
	}
	cred, err := enrolWith(s, tok)
	if err != nil {
		t.Fatalf("enrol %s: %v", id, err)
	}
	return cred
}

func enrolWith(s *Server, token string) (uplink.Credential, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return uplink.Enroll(ctx, uplink.EnrolOptions{Central: "https://" + s.EdgeAddr(), Token: token, Software: "test", Hostname: "test-box"})
}

// dialEnrolled opens the edge websocket on the TLS edge hub, naming edge id
// and trusting central by cred's pin.
func dialEnrolled(s *Server, cred uplink.Credential, id string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitFor, TLSClientConfig: cred.TLSConfig()}
	return d.Dial("wss://"+s.EdgeAddr()+wire.EdgePath, http.Header{wire.EdgeIDHeader: {id}})
}

// signedHello is the hello an enrolled edge sends for nonce.
func signedHello(cred uplink.Credential, nonce []byte) wire.Hello {
	h := wire.Hello{EdgeID: cred.EdgeID, SiteID: cred.SiteID, Software: "test", ConfigRevision: "r1", Time: time.Now().UTC(), Nonce: nonce}
	h.Signature = ed25519.Sign(ed25519.PrivateKey(cred.PrivateKey), h.SigningBytes())
	return h
}

// connectEnrolled performs the whole handshake as cred's edge.
func connectEnrolled(t *testing.T, s *Server, cred uplink.Credential) *edgeClient {
	t.Helper()
	ws, _, err := dialEnrolled(s, cred, cred.EdgeID)
	if err != nil {
		t.Fatalf("dial %s: %v", cred.EdgeID, err)
	}
	t.Cleanup(func() { ws.Close() })
	e := &edgeClient{t: t, ws: ws}
	nonce := e.readChallenge()
	e.send(wire.TypeHello, signedHello(cred, nonce))
	return e.welcome(cred.EdgeID)
}
