package notify

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/config"
)

// root is how central's config holds this section.
type root struct {
	Notify *Config `yaml:"notify,omitempty"`
}

func (r *root) Validate() []config.FieldError {
	if r.Notify == nil {
		return nil
	}
	return r.Notify.FieldErrors("notify")
}

const goodYAML = `notify:
  queue: 500
  mqtt:
    url: tcp://127.0.0.1:1883
    username: vigil
    password_file: /etc/vigil/mqtt.pass
    qos: 0
    retain: false
    timeout: 3s
  webhooks:
    - name: soc
      url: https://soc.example/hook
      secret_file: /etc/vigil/soc.key
    - name: guards
      url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x
      preset: wecom
      min_severity: red
    - name: ding
      url: https://oapi.dingtalk.com/robot/send?access_token=x
      preset: dingtalk
`

func TestConfigParse(t *testing.T) {
	var r root
	if err := config.Parse("central.yaml", []byte(goodYAML), &r); err != nil {
		t.Fatal(err)
	}
	c := r.Notify.withDefaults()
	if c.Queue != 500 || *c.MQTT.QoS != 0 || *c.MQTT.Retain || c.MQTT.TopicPrefix != "vigil" || c.MQTT.ClientID != DefaultClientID ||
		c.MQTT.Timeout.D().Seconds() != 3 || c.Webhooks[0].Preset != PresetGeneric || c.Webhooks[1].Timeout.D() != DefaultTimeout {
		t.Fatalf("parsed %+v / %+v", c, *c.MQTT)
	}
	d := (&Config{MQTT: &MQTTConfig{URL: "tcp://h:1"}}).withDefaults()
	if *d.MQTT.QoS != 1 || !*d.MQTT.Retain || d.Queue != DefaultQueue {
		t.Fatalf("defaults %+v", *d.MQTT)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad webhook url", "notify:\n  webhooks:\n    - name: a\n      url: https://a/\n      secret_file: /k\n    - name: b\n      url: ftp://x\n      secret_file: /k\n",
			"central.yaml:7: notify.webhooks[1].url: want an http:// or https:// URL with a host"},
		{"duplicate name", "notify:\n  webhooks:\n    - name: a\n      url: https://a/\n      secret_file: /k\n    - name: a\n      url: https://b/\n      secret_file: /k\n",
			`central.yaml:6: notify.webhooks[1].name: "a" is also webhooks[0]`},
		{"generic needs a secret", "notify:\n  webhooks:\n    - name: a\n      url: https://a/\n",
			"notify.webhooks[0].secret_file: is required for the generic preset"},
		{"preset", "notify:\n  webhooks:\n    - name: a\n      url: https://a/\n      preset: slack\n",
			`central.yaml:5: notify.webhooks[0].preset: "slack": want generic, wecom or dingtalk`},
		{"severity", "notify:\n  webhooks:\n    - name: a\n      url: https://a/\n      preset: wecom\n      min_severity: orange\n",
			`central.yaml:6: notify.webhooks[0].min_severity: "orange"`},
		{"broker scheme", "notify:\n  mqtt:\n    url: http://broker:1883\n",
			`central.yaml:3: notify.mqtt.url: "http://broker:1883": scheme must be tcp or ssl`},
		{"broker port", "notify:\n  mqtt:\n    url: tcp://broker\n", `notify.mqtt.url: "tcp://broker": want host:port`},
		{"qos", "notify:\n  mqtt:\n    url: tcp://b:1\n    qos: 3\n", "central.yaml:4: notify.mqtt.qos: must be 0, 1 or 2, got 3"},
		{"prefix", "notify:\n  mqtt:\n    url: tcp://b:1\n    topic_prefix: a/#\n", "central.yaml:4: notify.mqtt.topic_prefix:"},
		{"queue", "notify:\n  queue: -1\n", "central.yaml:2: notify.queue: must be between"},
		{"unknown field", "notify:\n  mqtt:\n    url: tcp://b:1\n    retian: true\n", "notify.mqtt.retian: unknown field; did you mean retain?"},
		{"bad timeout", "notify:\n  mqtt:\n    url: tcp://b:1\n    timeout: soon\n", `central.yaml:4: notify.mqtt.timeout: "soon" is not a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r root
			err := config.Parse("central.yaml", []byte(tc.yaml), &r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	c := Config{Webhooks: []WebhookConfig{{Name: "a", URL: "https://a/", SecretFile: "/k"}, {Name: "B!", URL: ""}}}
	err := c.Validate()
	for _, want := range []string{"notify.webhooks[1].url: is required", `notify.webhooks[1].name: "B!"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
	var fe config.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("Validate's error does not hold config.FieldErrors")
	}
}

func TestNewSecretFile(t *testing.T) {
	_, err := New(Config{Webhooks: []WebhookConfig{{Name: "a", URL: "https://a/", SecretFile: "/nonexistent/k"}}}, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "notify.webhooks[0].secret_file: ") {
		t.Fatalf("New = %v", err)
	}
	_, err = New(Config{MQTT: &MQTTConfig{URL: "tcp://h:1", Username: "u", PasswordFile: writeSecret(t, " ")}}, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "notify.mqtt.password_file: is empty") {
		t.Fatalf("New = %v", err)
	}
}

// FuzzConfig feeds arbitrary YAML through the loader: it must never
// panic, and whatever it accepts must be usable (defaults, topics).
func FuzzConfig(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte("notify:\n  mqtt:\n    url: ssl://b:8883\n    topic_prefix: site/a\n"))
	f.Add([]byte("notify:\n  webhooks:\n    - {name: x, url: 'http://[::1]:80/', preset: dingtalk, timeout: 1ms}\n"))
	f.Add([]byte("notify: {queue: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r root
		if err := config.Parse("fuzz.yaml", data, &r); err != nil || r.Notify == nil {
			return
		}
		if err := r.Notify.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		c := r.Notify.withDefaults()
		if c.Queue < 1 {
			t.Fatalf("queue %d", c.Queue)
		}
		if c.MQTT != nil {
			tp := Topics{Prefix: c.MQTT.TopicPrefix}.State("s/+", "#")
			if strings.ContainsAny(tp, "+#") || *c.MQTT.QoS > 2 {
				t.Fatalf("topic %q qos %d", tp, *c.MQTT.QoS)
			}
		}
		for _, w := range c.Webhooks {
			if w.Preset == "" || w.Timeout <= 0 {
				t.Fatalf("webhook defaults %+v", w)
			}
		}
	})
}
