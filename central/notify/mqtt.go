package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTT availability payloads on <prefix>/available.
const (
	AvailableOnline  = "online"
	AvailableOffline = "offline"
)

// Topics are the MQTT topics under one prefix (see README.md).
type Topics struct{ Prefix string }

// Alerts is <prefix>/alerts: every event, in order, not retained.
func (t Topics) Alerts() string { return t.Prefix + "/alerts" }

// State is <prefix>/alerts/<site>/<alert_id>/state: the latest event of
// one open alert, retained; cleared (an empty retained message) once the
// alert is resolved or closed.
func (t Topics) State(site, alertID string) string {
	return t.Prefix + "/alerts/" + topicLevel(site) + "/" + topicLevel(alertID) + "/state"
}

// Available is <prefix>/available: "online" (retained) while central is
// connected, "offline" as its will and when it closes.
func (t Topics) Available() string { return t.Prefix + "/available" }

// topicLevel makes s one topic level: the separator and the wildcards
// would change the topic's meaning, so they (and NUL) become "_"; an
// empty name becomes "_".
func topicLevel(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#', 0:
			return '_'
		}
		return r
	}, s)
}

// mqttSink publishes to one broker. It owns its paho client and does its
// own reconnecting (paho's auto-reconnect is off): the notifier's loop is
// the one place that retries, and a connection is made only when there
// is something to send.
type mqttSink struct {
	cfg      MQTTConfig
	topics   Topics
	password string
	qos      byte
	retain   bool
	timeout  time.Duration
	tls      *tls.Config // for ssl://
	log      *slog.Logger

	client paho.Client // nil or the last connection; only the loop touches it
}

func newMQTTSink(cfg MQTTConfig, log *slog.Logger) (*mqttSink, error) {
	s := &mqttSink{
		cfg:     cfg,
		topics:  Topics{Prefix: cfg.TopicPrefix},
		qos:     byte(*cfg.QoS),
		retain:  *cfg.Retain,
		timeout: cfg.Timeout.D(),
		log:     log,
	}
	if cfg.PasswordFile != "" {
		p, err := readSecret(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("notify.mqtt.password_file: %w", err)
		}
		s.password = string(p)
	}
	if strings.HasPrefix(cfg.URL, "ssl://") {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("notify.mqtt.ca_file: %w", err)
			}
			s.tls.RootCAs = x509.NewCertPool()
			if !s.tls.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("notify.mqtt.ca_file: no PEM certificate in %s", cfg.CAFile)
			}
		}
	}
	return s, nil
}

// deliver publishes e on <prefix>/alerts and its state topic, returning
// once the broker acknowledged both (at QoS ≥ 1).
func (s *mqttSink) deliver(ctx context.Context, e Event) error {
	if err := s.connect(ctx); err != nil {
		return err
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return &permanentError{fmt.Errorf("encode event: %w", err)}
	}
	state := s.topics.State(e.Site, e.AlertID)
	steps := []pubStep{{s.topics.Alerts(), false, payload}}
	if terminal(e.State) && s.retain {
		// Live subscribers see the end; the retained copy goes, so the
		// retained set is exactly the open alerts.
		steps = append(steps, pubStep{state, false, payload}, pubStep{state, true, nil})
	} else {
		steps = append(steps, pubStep{state, s.retain, payload})
	}
	for _, st := range steps {
		if err := s.publish(ctx, st.topic, st.retain, st.payload); err != nil {
			s.disconnect()
			return err
		}
	}
	return nil
}

// pubStep is one publish of a delivery.
type pubStep struct {
	topic   string
	retain  bool
	payload []byte
}

func (s *mqttSink) publish(ctx context.Context, topic string, retain bool, payload []byte) error {
	if err := wait(ctx, s.client.Publish(topic, s.qos, retain, payload), s.timeout); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// connect makes a connection if there is none, with "offline" as its
// will, and announces "online".
func (s *mqttSink) connect(ctx context.Context) error {
	if s.client != nil && s.client.IsConnectionOpen() {
		return nil
	}
	s.disconnect()
	opts := paho.NewClientOptions().
		AddBroker(s.cfg.URL).
		SetClientID(s.cfg.ClientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.password).
		SetProtocolVersion(4). // MQTT 3.1.1, what every broker speaks
		// A clean session: the queue that matters is ours, and paho must
		// not resend its own copies on a later connection.
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(s.timeout).
		SetWriteTimeout(s.timeout).
		SetKeepAlive(30*time.Second).
		SetWill(s.topics.Available(), AvailableOffline, s.qos, true)
	if s.tls != nil {
		opts.SetTLSConfig(s.tls)
	}
	c := paho.NewClient(opts)
	if err := wait(ctx, c.Connect(), s.timeout); err != nil {
		c.Disconnect(0)
		return fmt.Errorf("connect %s: %w", s.cfg.URL, err)
	}
	s.client = c
	if err := s.publish(ctx, s.topics.Available(), true, []byte(AvailableOnline)); err != nil {
		s.disconnect()
		return err
	}
	s.log.Info("connected", "broker", s.cfg.URL)
	return nil
}

// disconnect drops the connection without a goodbye (used after an error).
func (s *mqttSink) disconnect() {
	if s.client != nil {
		s.client.Disconnect(0)
		s.client = nil
	}
}

// close says "offline" (a clean disconnect does not fire the will) and
// disconnects.
func (s *mqttSink) close() {
	if s.client == nil {
		return
	}
	if s.client.IsConnectionOpen() {
		tok := s.client.Publish(s.topics.Available(), s.qos, true, AvailableOffline)
		tok.WaitTimeout(min(s.timeout, time.Second))
		s.client.Disconnect(250)
	}
	s.disconnect()
}

// wait waits for a paho token, ctx or the timeout.
func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("no acknowledgement within " + timeout.String())
	}
}
