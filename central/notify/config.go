package notify

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/internal/config"
)

// Defaults.
const (
	DefaultTopicPrefix = "vigil"
	DefaultClientID    = "vigil-central"
	DefaultQoS         = 1
	DefaultQueue       = 10000
	DefaultTimeout     = 10 * time.Second
	maxQueue           = 1_000_000
)

// Presets of a webhook: the body and the success test a receiver expects.
const (
	PresetGeneric  = "generic"
	PresetWeCom    = "wecom"
	PresetDingTalk = "dingtalk"
)

// Config is the notify section of central's YAML config:
//
//	notify:
//	  queue: 10000
//	  mqtt:
//	    url: tcp://broker.lan:1883
//	    client_id: vigil-central
//	    username: vigil
//	    password_file: /etc/vigil/mqtt.pass
//	    topic_prefix: vigil
//	    qos: 1
//	    retain: true
//	  webhooks:
//	    - name: soc
//	      url: https://soc.example/hooks/vigil
//	      preset: generic
//	      secret_file: /etc/vigil/soc-webhook.key
//	    - name: guards-wecom
//	      url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…
//	      preset: wecom
//	      min_severity: yellow
//	    - name: guards-dingtalk
//	      url: https://oapi.dingtalk.com/robot/send?access_token=…
//	      preset: dingtalk
//	      secret_file: /etc/vigil/dingtalk.secret
type Config struct {
	MQTT     *MQTTConfig     `yaml:"mqtt,omitempty"`
	Webhooks []WebhookConfig `yaml:"webhooks,omitempty"`
	// Queue bounds each sink's queue of undelivered events (default
	// 10000). When it is full the oldest non-red event is dropped, and
	// counted in vigil_notify_dropped_total{reason="queue_full"}.
	Queue int `yaml:"queue,omitempty"`
}

// MQTTConfig is the broker every event is published to.
type MQTTConfig struct {
	// URL is tcp://host:port or ssl://host:port (TLS, system roots).
	URL string `yaml:"url"`
	// CAFile is a PEM file of the CA(s) that sign an ssl:// broker's
	// certificate, for a broker with a private CA (default: system roots).
	CAFile   string `yaml:"ca_file,omitempty"`
	ClientID string `yaml:"client_id,omitempty"` // default vigil-central
	Username string `yaml:"username,omitempty"`
	// PasswordFile holds the password (trailing newline ignored).
	PasswordFile string `yaml:"password_file,omitempty"`
	// TopicPrefix starts every topic (default vigil).
	TopicPrefix string `yaml:"topic_prefix,omitempty"`
	// QoS of every publish (default 1). At 1 and 2 an event leaves the
	// queue only when the broker acknowledged it.
	QoS *int `yaml:"qos,omitempty"`
	// Retain the per-alert state topics (default true), so a subscriber
	// that connects later sees every open alert's state at once.
	Retain *bool `yaml:"retain,omitempty"`
	// Timeout bounds a connect and the wait for one acknowledgement
	// (default 10s).
	Timeout config.Duration `yaml:"timeout,omitempty"`
}

// WebhookConfig is one HTTP receiver.
type WebhookConfig struct {
	// Name names the sink in logs and metrics ({sink="<name>"}).
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Preset is generic (the event JSON, signed), wecom (WeCom group
	// robot markdown) or dingtalk (DingTalk custom robot markdown).
	Preset string `yaml:"preset,omitempty"`
	// SecretFile: for generic the HMAC-SHA256 key of X-Vigil-Signature
	// (required); for dingtalk the robot's 加签 secret (SEC…), if the
	// robot uses signing; not used by wecom, whose key is in the URL.
	SecretFile string `yaml:"secret_file,omitempty"`
	// MinSeverity sends only alerts at least this severe (green, yellow,
	// red; default all).
	MinSeverity string `yaml:"min_severity,omitempty"`
	// Timeout bounds one request (default 10s).
	Timeout config.Duration `yaml:"timeout,omitempty"`
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	badOpen = regexp.MustCompile(`[+#\x00]`)
)

// Validate checks the config; each problem names its field as written in
// the file under notify:, e.g. "notify.webhooks[1].url: …".
func (c *Config) Validate() error {
	var errs []error
	for _, fe := range c.FieldErrors("notify") {
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

// FieldErrors reports every problem, with fields named under prefix (the
// key of this section in the file, e.g. "notify"), for a config root's
// Validate.
func (c *Config) FieldErrors(prefix string) []config.FieldError {
	var out []config.FieldError
	add := func(field, format string, args ...any) {
		if prefix != "" {
			field = prefix + "." + field
		}
		out = append(out, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Queue < 0 || c.Queue > maxQueue {
		add("queue", "must be between 1 and %d (0: default %d)", maxQueue, DefaultQueue)
	}
	if m := c.MQTT; m != nil {
		if err := checkBrokerURL(m.URL); err != nil {
			add("mqtt.url", "%v", err)
		}
		if len(m.ClientID) > 23*4 || strings.ContainsAny(m.ClientID, "\x00") {
			add("mqtt.client_id", "must be at most 92 characters, without NUL")
		}
		if badOpen.MatchString(m.TopicPrefix) || strings.HasPrefix(m.TopicPrefix, "/") || strings.HasSuffix(m.TopicPrefix, "/") || strings.HasPrefix(m.TopicPrefix, "$") {
			add("mqtt.topic_prefix", "%q is not a topic prefix: no +, # or NUL, no leading $ or /, no trailing /", m.TopicPrefix)
		}
		if m.QoS != nil && (*m.QoS < 0 || *m.QoS > 2) {
			add("mqtt.qos", "must be 0, 1 or 2, got %d", *m.QoS)
		}
		if m.Timeout < 0 {
			add("mqtt.timeout", "must not be negative")
		}
		if m.CAFile != "" && !strings.HasPrefix(m.URL, "ssl://") {
			add("mqtt.ca_file", "is only for ssl:// brokers")
		}
		if m.PasswordFile != "" && m.Username == "" {
			add("mqtt.username", "is required with password_file")
		}
	}
	names := map[string]int{}
	for i, w := range c.Webhooks {
		f := func(name string) string { return fmt.Sprintf("webhooks[%d].%s", i, name) }
		switch {
		case w.Name == "":
			add(f("name"), "is required (it names the sink in logs and metrics)")
		case !nameRE.MatchString(w.Name):
			add(f("name"), "%q: use 1-63 of a-z 0-9 _ . - (starting with a letter or digit)", w.Name)
		case w.Name == "mqtt":
			add(f("name"), `"mqtt" is the MQTT sink's name`)
		default:
			if j, dup := names[w.Name]; dup {
				add(f("name"), "%q is also webhooks[%d]", w.Name, j)
			} else {
				names[w.Name] = i
			}
		}
		if err := checkHTTPURL(w.URL); err != nil {
			add(f("url"), "%v", err)
		}
		switch w.Preset {
		case "", PresetGeneric:
			if w.SecretFile == "" {
				add(f("secret_file"), "is required for the generic preset: receivers check X-Vigil-Signature with it")
			}
		case PresetWeCom:
			if w.SecretFile != "" {
				add(f("secret_file"), "is not used by WeCom group robots (the key is in the url)")
			}
		case PresetDingTalk:
		default:
			add(f("preset"), "%q: want generic, wecom or dingtalk", w.Preset)
		}
		if w.MinSeverity != "" && severityRank(w.MinSeverity) == 0 {
			add(f("min_severity"), "%q: want green, yellow or red", w.MinSeverity)
		}
		if w.Timeout < 0 {
			add(f("timeout"), "must not be negative")
		}
	}
	return out
}

func checkBrokerURL(s string) error {
	if s == "" {
		return errors.New("is required (tcp://host:1883 or ssl://host:8883)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "tcp" && u.Scheme != "ssl" {
		return fmt.Errorf("%q: scheme must be tcp or ssl", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q: want only scheme://host:port (credentials go in username and password_file)", s)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" || u.Hostname() == "" {
		return fmt.Errorf("%q: want host:port", s)
	}
	return nil
}

func checkHTTPURL(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("want an http:// or https:// URL with a host")
	}
	if u.Fragment != "" {
		return fmt.Errorf("must not have a #fragment")
	}
	return nil
}

// readSecret reads a secret file, dropping surrounding white space (an
// editor's trailing newline).
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, errors.New("is empty")
	}
	return []byte(s), nil
}

// withDefaults returns the config with every default filled in.
func (c Config) withDefaults() Config {
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.MQTT != nil {
		m := *c.MQTT
		if m.ClientID == "" {
			m.ClientID = DefaultClientID
		}
		if m.TopicPrefix == "" {
			m.TopicPrefix = DefaultTopicPrefix
		}
		if m.QoS == nil {
			q := DefaultQoS
			m.QoS = &q
		}
		if m.Retain == nil {
			r := true
			m.Retain = &r
		}
		if m.Timeout == 0 {
			m.Timeout = config.Duration(DefaultTimeout)
		}
		c.MQTT = &m
	}
	hooks := make([]WebhookConfig, len(c.Webhooks))
	for i, w := range c.Webhooks {
		if w.Preset == "" {
			w.Preset = PresetGeneric
		}
		if w.Timeout == 0 {
			w.Timeout = config.Duration(DefaultTimeout)
		}
		hooks[i] = w
	}
	c.Webhooks = hooks
	return c
}
