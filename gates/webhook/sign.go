package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Request headers. README.md ("Gates") documents them for integrators.
const (
	HeaderController = "X-Vigil-Controller" // the controller's configured ID
	HeaderTimestamp  = "X-Vigil-Timestamp"  // Unix seconds when the request was signed
	HeaderSignature  = "X-Vigil-Signature"  // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
)

// Sign returns the X-Vigil-Signature value for body signed at Unix second ts.
func Sign(secret string, ts int64, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts, 10), body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// NewRequest builds a signed POST of a JSON body, as a controller (or the
// simulator) sends it.
func NewRequest(ctx context.Context, url, controller, secret string, body []byte, now time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderController, controller)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	return req, nil
}

// Response is the JSON body of every answer.
type Response struct {
	Accepted   int    `json:"accepted"`             // events handed to the gate machines
	Duplicates int    `json:"duplicates,omitempty"` // events already received (skipped)
	Error      string `json:"error,omitempty"`      // for people
	Code       string `json:"code,omitempty"`       // for programs: see README.md
}
