// Package kamailio runs a real Kamailio SIP server (Debian's
// /usr/sbin/kamailio) for tests, playing a GB/T 28181 platform's SIP
// front: a registrar with digest authentication (one password, no
// database, as a platform gives each device), a location table in memory,
// MESSAGEs to the platform's ID answered 200 only for registered devices
// (a restarted platform forgets them, as a real one does), and other
// requests relayed to registered devices by lookup("location").
//
// It listens on 127.0.0.1 at a free port, UDP and TCP, with a config
// written to the test's temp directory, and can stop and come back on the
// same port. A test fails (never skips) when kamailio is not installed
// (apt-get install kamailio; deploy/install-deps.sh does it).
//
//	k := kamailio.Start(t, kamailio.Options{ServerID: "34020000002000000001", Domain: "3402000000", Password: "12345678"})
//	k.Addr()                       // 127.0.0.1:PORT
//	k.Registered("340200…")        // in the location table (kamcmd ul.dump)
//	k.Restart()                    // location table lost
package kamailio

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/daemon"
)

const (
	startWait = 15 * time.Second
	stopWait  = 5 * time.Second
)

// Options configure the platform Kamailio plays.
type Options struct {
	// ServerID is the platform's 20-digit SIP ID: MESSAGEs to it are the
	// platform's (keepalives, query answers).
	ServerID string
	// Domain is the digest realm (the To domain of a REGISTER).
	Domain string
	// Password is every device's password.
	Password string
	// TZ is the zone of the Date header Kamailio adds to a successful
	// REGISTER's 200 OK, written as a GB/T 28181 platform does:
	// local time "2006-01-02T15:04:05.000". Empty means UTC.
	TZ string
}

// Server is a kamailio process owned by one test.
type Server struct {
	t      testing.TB
	kamcmd string
	ctl    string
	port   int
	d      *daemon.Daemon
}

const why = "SIP tests need a real registrar"

// Start runs kamailio for the rest of the test; it is killed by the test's
// cleanup, and its log is printed if the test failed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := daemon.Binary("kamailio", "kamailio", why)
	if err != nil {
		t.Fatal(err)
	}
	kamcmd, err := daemon.Binary("kamcmd", "kamailio", why)
	if err != nil {
		t.Fatal(err)
	}
	port, err := daemon.FreePort()
	if err != nil {
		t.Fatalf("kamailio: no free port: %v", err)
	}
	dir := t.TempDir()
	s := &Server{t: t, kamcmd: kamcmd, port: port, ctl: filepath.Join(dir, "kamailio_ctl")}
	conf := filepath.Join(dir, "kamailio.cfg")
	tz := o.TZ
	if tz == "" {
		tz = "UTC"
	}
	var cfg bytes.Buffer
	err = cfgTemplate.Execute(&cfg, map[string]any{
		"Port": port, "ServerID": o.ServerID, "Password": o.Password, "Ctl": s.ctl,
		"Modules": modulesDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(bin, "-c", "-f", conf)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("kamailio rejects the generated config: %v\n%s", err, out)
	}
	// -DD: stay in the foreground (children still fork), -E: log to
	// stderr, -Y: runtime files in the test's directory. Small memory
	// pools: tests register a handful of devices.
	dialed := daemon.DialTCP(s.Addr())
	s.d = daemon.New(t, daemon.Spec{Name: "kamailio", Addr: s.Addr(), Path: bin,
		Args: []string{"-DD", "-E", "-f", conf, "-Y", dir, "-m", "32", "-M", "8"}, Env: []string{"TZ=" + tz},
		StartWait: startWait, StopWait: stopWait, Poll: 50 * time.Millisecond,
		Ready: func() error {
			if err := dialed(); err != nil {
				return err
			}
			_, err := s.rpc("core.version")
			return err
		}})
	s.d.Start()
	return s
}

// modulesDir is where Debian installs Kamailio's modules.
func modulesDir() string {
	for _, d := range []string{"/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules"} {
		if _, err := os.Stat(filepath.Join(d, "registrar.so")); err == nil {
			return d
		}
	}
	return "/usr/lib/x86_64-linux-gnu/kamailio/modules"
}

// Addr is 127.0.0.1:PORT, for UDP and TCP alike.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Port is the SIP port.
func (s *Server) Port() int { return s.port }

// Log returns what kamailio has logged so far (all its runs).
func (s *Server) Log() string { return s.d.Log() }

// Start brings a stopped server back on the same port.
func (s *Server) Start() {
	s.t.Helper()
	s.d.Start()
}

// Stop shuts kamailio down (SIGTERM to its process group: the main
// process and its children) and waits for it; its location table is lost.
func (s *Server) Stop() { s.d.Stop() }

// Restart stops kamailio and starts it again on the same port, with an
// empty location table: a platform restart as a device sees it.
func (s *Server) Restart() {
	s.t.Helper()
	s.d.Restart()
}

// rpc runs one kamcmd command against this instance's control socket.
func (s *Server) rpc(args ...string) (string, error) {
	cmd := exec.Command(s.kamcmd, append([]string{"-s", "unix:" + s.ctl}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kamcmd %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Locations returns kamcmd ul.dump: the registered contacts.
func (s *Server) Locations() (string, error) { return s.rpc("ul.dump") }

// Registered reports whether user (a device ID) has a contact in the
// location table.
func (s *Server) Registered(user string) bool {
	out, err := s.rpc("ul.dump")
	if err != nil {
		return false
	}
	return strings.Contains(out, "AoR: "+user)
}

var cfgTemplate = template.Must(template.New("kamailio.cfg").Parse(`#!KAMAILIO
# Generated by vigil's internal/testrig/kamailio: a GB/T 28181 platform's
# SIP front for tests. No database: registrations live in memory and the
# password is this define.
#!define SERVERID "{{.ServerID}}"
#!define GBPASS "{{.Password}}"

debug=2
log_stderror=yes
log_facility=LOG_LOCAL0
fork=yes
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:{{.Port}}
listen=tcp:127.0.0.1:{{.Port}}
tcp_connection_lifetime=3605

mpath="{{.Modules}}/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "ctl.so"

modparam("ctl", "binrpc", "unix:{{.Ctl}}")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 1)
modparam("registrar", "default_expires", 3600)
modparam("registrar", "max_expires", 86400)
modparam("auth", "nonce_expire", 300)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("REGISTER")) {
		route(REGISTRAR);
		exit;
	}
	if (is_method("MESSAGE") && $rU == SERVERID) {
		route(PLATFORM);
		exit;
	}
	if (is_method("ACK") && !t_check_trans()) {
		exit;
	}
	# Everything else goes to a registered device (the platform's
	# queries, INVITEs).
	if (!lookup("location")) {
		sl_send_reply("404", "Not Found");
		exit;
	}
	xlog("L_NOTICE", "relay $rm to $ru\n");
	t_relay();
	exit;
}

route[REGISTRAR] {
	$var(password) = GBPASS;
	pv_www_authenticate("$td", "$var(password)", "0");
	$var(rc) = $rc;
	if ($var(rc) < 0) {
		if ($var(rc) == -2 || $var(rc) == -3) {
			xlog("L_NOTICE", "REGISTER $fU: wrong credentials ($var(rc))\n");
			sl_send_reply("403", "Forbidden");
			exit;
		}
		auth_challenge("$td", "0");
		exit;
	}
	if ($au != $fU) {
		sl_send_reply("403", "Forbidden: auth user is not the device");
		exit;
	}
	consume_credentials();
	append_to_reply("Date: $timef(%Y-%m-%dT%H:%M:%S).000\r\n");
	if (!save("location")) {
		sl_reply_error();
	}
	xlog("L_NOTICE", "REGISTER $fU saved, expires $hdr(Expires)\n");
	exit;
}

route[PLATFORM] {
	if (!registered("location", "$fu")) {
		xlog("L_NOTICE", "MESSAGE from unregistered $fU refused\n");
		sl_send_reply("403", "Forbidden: not registered");
		exit;
	}
	xlog("L_NOTICE", "platform MESSAGE from $fU ($cl bytes)\n");
	sl_send_reply("200", "OK");
	exit;
}
`))
