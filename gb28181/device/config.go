package device

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// Config is what an installer gets from the platform's administrator, and
// the timings of registration and keepalive. Field names in errors are the
// edge.yaml keys under gb28181.
type Config struct {
	// ServerID is the platform's 20-digit SIP server ID (type 200).
	ServerID string
	// ServerDomain is the platform's SIP domain, usually the first ten
	// digits of ServerID; it is the digest realm.
	ServerDomain string
	// ServerAddr is the platform's SIP address, host:port.
	ServerAddr string
	// Transport is "udp" or "tcp".
	Transport string
	// DeviceID is this edge's 20-digit ID as the platform knows it.
	DeviceID string
	// Password is the device's registration password.
	Password string
	// Expires is the registration lifetime asked for (default 3600 s); the
	// device refreshes at 2/3 of what the platform grants.
	Expires time.Duration
	// Keepalive is the interval of keepalive MESSAGEs (default 60 s).
	Keepalive time.Duration
	// MaxKeepaliveMisses unanswered keepalives in a row mean the platform
	// lost us: the device registers again (default 3).
	MaxKeepaliveMisses int
	// LocalAddr is the local SIP address to bind, host:port (default
	// ":5060"); port 0 picks a free one.
	LocalAddr string
	// ContactHost is the address the platform reaches the device at (the
	// Contact and Via host); empty means the local address towards
	// ServerAddr.
	ContactHost string
	// RetryMin and RetryMax bound the backoff between failed registrations
	// (defaults 2 s and 60 s); AuthRetry is the wait after the platform
	// refused the credentials (default 5 min), so that a wrong password
	// does not hammer the platform or get the device locked out.
	RetryMin, RetryMax, AuthRetry time.Duration
	// TimeZone is the zone of the platform's MANSCDP times and Date header
	// (default Asia/Shanghai).
	TimeZone string

	// Name, Manufacturer, Model and Firmware describe the device in
	// DeviceInfo answers.
	Name, Manufacturer, Model, Firmware string
}

// Transports.
const (
	UDP = "udp"
	TCP = "tcp"
)

// withDefaults returns c with the zero timings filled in.
func (c Config) withDefaults() Config {
	if c.Transport == "" {
		c.Transport = UDP
	}
	c.Transport = strings.ToLower(c.Transport)
	if c.ServerDomain == "" && len(c.ServerID) >= 10 {
		c.ServerDomain = manscdp.Domain(c.ServerID)
	}
	if c.Expires == 0 {
		c.Expires = 3600 * time.Second
	}
	if c.Keepalive == 0 {
		c.Keepalive = 60 * time.Second
	}
	if c.MaxKeepaliveMisses == 0 {
		c.MaxKeepaliveMisses = 3
	}
	if c.LocalAddr == "" {
		c.LocalAddr = ":5060"
	}
	if c.RetryMin == 0 {
		c.RetryMin = 2 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 60 * time.Second
	}
	if c.AuthRetry == 0 {
		c.AuthRetry = 5 * time.Minute
	}
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Shanghai"
	}
	if c.Name == "" {
		c.Name = "Vigil edge"
	}
	if c.Manufacturer == "" {
		c.Manufacturer = "Vigil"
	}
	if c.Model == "" {
		c.Model = "vigil-edge"
	}
	return c
}

// Validate checks the whole configuration (defaults applied) and returns
// every problem, each naming its field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("gb28181.%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if err := manscdp.ValidateID(c.ServerID); err != nil {
		bad("server_id", "%v", err)
	}
	if c.ServerDomain == "" || strings.ContainsAny(c.ServerDomain, " @:;<>") {
		bad("server_domain", "%q is not a SIP domain (usually the first 10 digits of server_id)", c.ServerDomain)
	}
	if host, port, err := net.SplitHostPort(c.ServerAddr); err != nil || host == "" {
		bad("server_addr", "%q is not host:port (e.g. 10.1.2.3:5060)", c.ServerAddr)
	} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		bad("server_addr", "port %q is not 1-65535", port)
	}
	if c.Transport != UDP && c.Transport != TCP {
		bad("transport", "%q, want udp or tcp", c.Transport)
	}
	if err := manscdp.ValidateID(c.DeviceID); err != nil {
		bad("device_id", "%v", err)
	} else if c.DeviceID == c.ServerID {
		bad("device_id", "equals server_id: the platform gives the device an ID of its own")
	}
	if c.Password == "" {
		bad("password", "empty: the platform's administrator gives each device a password")
	}
	if c.Expires < time.Second {
		bad("expires", "%v, want at least 1s (platforms use 3600s)", c.Expires)
	}
	if c.Keepalive < 100*time.Millisecond {
		bad("keepalive_interval", "%v is too short (standard: 60s)", c.Keepalive)
	}
	if c.MaxKeepaliveMisses < 1 {
		bad("max_keepalive_misses", "%d, want at least 1", c.MaxKeepaliveMisses)
	}
	if _, port, err := net.SplitHostPort(c.LocalAddr); err != nil {
		bad("local_addr", "%q is not host:port (e.g. :5060)", c.LocalAddr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("local_addr", "port %q is not 0-65535", port)
	}
	if c.ContactHost != "" && net.ParseIP(c.ContactHost) == nil {
		bad("contact_host", "%q is not an IP address", c.ContactHost)
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		bad("retry_max", "%v below retry_min %v", c.RetryMax, c.RetryMin)
	}
	if c.AuthRetry <= 0 {
		bad("auth_retry", "%v, want a positive wait", c.AuthRetry)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		bad("time_zone", "%v", err)
	}
	return errors.Join(errs...)
}
