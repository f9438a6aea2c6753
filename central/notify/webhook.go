package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a generic webhook request.
const (
	HeaderEvent     = "X-Vigil-Event"     // the event's type
	HeaderTimestamp = "X-Vigil-Timestamp" // Unix seconds when this attempt was signed
	HeaderSignature = "X-Vigil-Signature" // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
)

// maxReply bounds how much of a receiver's answer is read.
const maxReply = 64 << 10

// Sign returns the X-Vigil-Signature value of body sent at timestamp (the
// X-Vigil-Timestamp value, decimal Unix seconds):
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify is what a receiver of the generic webhook runs on the raw
// request body and the two headers: it recomputes the signature,
// compares it in constant time, and refuses a timestamp further than
// maxSkew from now, so a captured request cannot be replayed later.
// Retries are signed afresh, so a receiver may keep maxSkew small (5m).
// Deliveries are at least once: drop an event whose seq was seen.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("notify: bad " + HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("notify: %s is %v away from now", HeaderTimestamp, d.Round(time.Second))
	}
	want := Sign(secret, timestamp, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errors.New("notify: signature does not match")
	}
	return nil
}

// DingTalkSign is a DingTalk custom robot's 加签 signature, as its
// documentation defines it ("自定义机器人安全设置", open.dingtalk.com
// /document/robots/customize-robot-security-settings): the string
// timestamp + "\n" + secret, in UTF-8, is signed with HMAC-SHA256 keyed
// with the secret, and the digest is Base64-encoded. timestamp is Unix
// milliseconds and must be within an hour of DingTalk's clock. The
// caller URL-encodes the result into &sign=.
func DingTalkSign(secret string, timestampMillis int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// webhookSink posts events to one URL in the shape of its preset.
type webhookSink struct {
	cfg     WebhookConfig
	secret  []byte
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

func newWebhookSink(cfg WebhookConfig, client *http.Client, now func() time.Time) (*webhookSink, error) {
	s := &webhookSink{cfg: cfg, client: client, timeout: cfg.Timeout.D(), now: now}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if cfg.SecretFile != "" {
		b, err := readSecret(cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("secret_file: %w", err)
		}
		s.secret = b
	}
	return s, nil
}

func (s *webhookSink) close() {}

// deliver posts e; nil only for a 2xx (and, for the robots, errcode 0).
func (s *webhookSink) deliver(ctx context.Context, e Event) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	target := s.cfg.URL
	var body []byte
	var err error
	switch s.cfg.Preset {
	case PresetWeCom:
		body, err = wecomBody(e)
	case PresetDingTalk:
		body, err = dingtalkBody(e)
		if len(s.secret) > 0 {
			ts := s.now().UnixMilli()
			sep := "&"
			if !strings.Contains(target, "?") {
				sep = "?"
			}
			// The documented form: &timestamp=<ms>&sign=<urlEncode(base64)>.
			target += sep + "timestamp=" + strconv.FormatInt(ts, 10) + "&sign=" + urlEncode(DingTalkSign(string(s.secret), ts))
		}
	default:
		body, err = json.Marshal(e)
	}
	if err != nil {
		return &permanentError{fmt.Errorf("encode event: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "vigil-notify/"+strconv.Itoa(Version))
	if s.cfg.Preset == PresetGeneric {
		ts := strconv.FormatInt(s.now().Unix(), 10)
		req.Header.Set(HeaderEvent, e.Type)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(s.secret, ts, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return redact(err, s.cfg.URL)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxReply)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(reply))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
			return &permanentError{err}
		}
		return err
	}
	if s.cfg.Preset == PresetWeCom || s.cfg.Preset == PresetDingTalk {
		// Both robots answer 200 with {"errcode":0,"errmsg":"ok"}; any
		// other errcode (rate limit, keyword or signature mismatch) is a
		// failure and is retried.
		var r struct {
			ErrCode *int   `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		if err := json.Unmarshal(reply, &r); err != nil || r.ErrCode == nil {
			return fmt.Errorf("HTTP %d without an errcode: %s", resp.StatusCode, snippet(reply))
		}
		if *r.ErrCode != 0 {
			return fmt.Errorf("errcode %d: %s", *r.ErrCode, r.ErrMsg)
		}
	}
	return nil
}

// urlEncode is the documentation's urlEncode (Java URLEncoder, Python
// quote_plus): for Base64's alphabet, + / = become %2B %2F %3D.
func urlEncode(s string) string {
	r := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D")
	return r.Replace(s)
}

// redact keeps the URL's query (the robots' key and access_token) out of
// error messages and logs.
func redact(err error, rawURL string) error {
	msg := err.Error()
	if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		msg = strings.ReplaceAll(msg, rawURL[i:], "?…")
		msg = strings.ReplaceAll(msg, rawURL[i+1:], "…")
	}
	return errors.New(msg)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
