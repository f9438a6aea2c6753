package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// Every hello field is covered by the signature, and no two different
// hellos share signing bytes (length prefixes keep "ab"+"c" from "a"+"bc").
func TestHelloSigningBytesCoverEveryField(t *testing.T) {
	base := Hello{EdgeID: "gate-1", SiteID: "lotus/n/w/g", Software: "vigil-edge/0.2", ConfigRevision: "r7",
		Time: time.Date(2026, 11, 22, 3, 0, 0, 1, time.UTC), ClockOffsetMS: -40, Nonce: bytes.Repeat([]byte{1}, NonceBytes)}
	muts := map[string]func(h *Hello){
		"edge":     func(h *Hello) { h.EdgeID = "gate-2" },
		"site":     func(h *Hello) { h.SiteID = "lotus/n/w/h" },
		"software": func(h *Hello) { h.Software = "x" },
		"revision": func(h *Hello) { h.ConfigRevision = "r8" },
		"time":     func(h *Hello) { h.Time = h.Time.Add(time.Nanosecond) },
		"offset":   func(h *Hello) { h.ClockOffsetMS = 40 },
		"nonce":    func(h *Hello) { h.Nonce = bytes.Repeat([]byte{2}, NonceBytes) },
		"shifted":  func(h *Hello) { h.EdgeID, h.SiteID = "gate-1l", "otus/n/w/g" },
	}
	want := base.SigningBytes()
	for name, mut := range muts {
		h := base
		mut(&h)
		if bytes.Equal(h.SigningBytes(), want) {
			t.Errorf("%s: changed hello has the same signing bytes", name)
		}
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	base.Signature = ed25519.Sign(priv, base.SigningBytes())
	if !ed25519.Verify(pub, base.SigningBytes(), base.Signature) {
		t.Fatal("signature does not verify")
	}
	// The signature itself is not signed over.
	h := base
	h.Signature = nil
	if !bytes.Equal(h.SigningBytes(), base.SigningBytes()) {
		t.Fatal("signing bytes depend on the signature")
	}
}

func TestEnrolTokenRoundTripAndDamage(t *testing.T) {
	tok := EnrolToken{Secret: bytes.Repeat([]byte{9}, 32), Pin: bytes.Repeat([]byte{3}, 32)}
	s := tok.String()
	if !strings.HasPrefix(s, "vigil-enrol-1.") {
		t.Fatalf("token %q", s)
	}
	got, err := ParseEnrolToken(" " + s + "\n")
	if err != nil || !bytes.Equal(got.Secret, tok.Secret) || !bytes.Equal(got.Pin, tok.Pin) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"", s[:len(s)-3], strings.Replace(s, "vigil-enrol-1", "vigil-enrol-2", 1), s + ".x", "vigil-enrol-1.!!.!!"} {
		if _, err := ParseEnrolToken(bad); err == nil {
			t.Errorf("damaged token %q accepted", bad)
		}
	}
	pin := FormatPin(tok.Pin)
	if p, err := ParsePin(pin); err != nil || !bytes.Equal(p, tok.Pin) {
		t.Fatalf("pin round trip %q: %v", pin, err)
	}
	if _, err := ParsePin("sha1/" + pin[7:]); err == nil {
		t.Fatal("pin with the wrong prefix accepted")
	}
}

func TestRequestValidate(t *testing.T) {
	now := time.Now()
	ok := []Request{
		{ID: "r1", Method: MethodClip, Camera: "c", From: now, To: now.Add(time.Second)},
		{ID: "r2", Method: MethodThumbnail, Camera: "c", At: now},
		{ID: "r3", Method: MethodLiveStart, Camera: "c"},
		{ID: "r4", Method: MethodConfig, Revision: "7", Config: []byte(`{}`)},
	}
	for _, r := range ok {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", r.Method, err)
		}
	}
	bad := []Request{
		{Method: MethodLiveStop, Camera: "c"},
		{ID: "r", Method: MethodClip, Camera: "c", From: now, To: now},
		{ID: "r", Method: MethodThumbnail, Camera: "c"},
		{ID: "r", Method: MethodConfig, Revision: "7"},
		{ID: "r", Method: "reboot"},
	}
	for _, r := range bad {
		if r.Validate() == nil {
			t.Errorf("invalid request accepted: %+v", r)
		}
	}
}

func TestUpdateAndBatchValidate(t *testing.T) {
	u := AlertUpdate{ID: "u", AlertID: "a", EdgeID: "e", Time: time.Now()}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	u.Severity = "purple"
	if u.Validate() == nil {
		t.Fatal("bad severity accepted")
	}
	b := EventBatch{ID: "b", EdgeID: "e", Events: []Event{{Time: time.Now(), Source: "g", Kind: "gate.opened"}}}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	b.Events = append(b.Events, Event{Source: "g"})
	if b.Validate() == nil {
		t.Fatal("event without time accepted")
	}
	b.Events = make([]Event, MaxBatchEvents+1)
	if b.Validate() == nil {
		t.Fatal("oversized batch accepted")
	}
}
