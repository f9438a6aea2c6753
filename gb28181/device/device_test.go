package device

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
	"github.com/vigil-perimeter/vigil/internal/testrig/kamailio"
	"github.com/vigil-perimeter/vigil/internal/testrig/sipp"
)

const (
	serverID = "34020000002000000001"
	domain   = "3402000000"
	deviceID = "34020000001180000001"
	cam1     = "34020000001320000001"
	cam2     = "34020000001320000002"
	alarm1   = "34020000001340000001"
	password = "Vigil-12345678"
)

// edgeChannels is the Provider the edge will implement, reduced to fixed
// channels: two cameras (one offline) and an armed gate contact.
type edgeChannels struct{}

func (edgeChannels) Channels() []Channel {
	lon, lat := 117.2272, 31.8206
	return []Channel{
		{ID: cam1, Name: "村口东侧大门", Kind: KindCamera, Online: true, Address: "东门", Longitude: &lon, Latitude: &lat},
		{ID: cam2, Name: "Gate north", Kind: KindCamera, Online: false},
		{ID: alarm1, Name: "东门门磁", Kind: KindAlarm, Online: true, Armed: true},
	}
}

func (edgeChannels) Health() Health { return Health{OK: true, Encoding: true, Recording: true} }

// edgeWithClips adds recordings: two alarm clips per asked window, and the
// windows it was asked for.
type edgeWithClips struct {
	edgeChannels
	mu    sync.Mutex
	asked []string
}

func (e *edgeWithClips) Records(ctx context.Context, channelID string, start, end time.Time, typ string) ([]manscdp.RecordItem, error) {
	e.mu.Lock()
	e.asked = append(e.asked, fmt.Sprintf("%s %s %s %s", channelID, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), typ))
	e.mu.Unlock()
	loc := start.Location()
	return []manscdp.RecordItem{
		manscdp.NewRecordItem(channelID, "村口东侧大门", start.Add(time.Hour), start.Add(time.Hour+time.Minute), manscdp.RecordAlarm, loc),
		manscdp.NewRecordItem(channelID, "村口东侧大门", start.Add(2*time.Hour), start.Add(2*time.Hour+30*time.Second), manscdp.RecordAlarm, loc),
	}, nil
}

func freeLocal(t *testing.T) string {
	t.Helper()
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func testConfig(t *testing.T, server, transport string) Config {
	return Config{
		ServerID: serverID, ServerDomain: domain, ServerAddr: server, Transport: transport,
		DeviceID: deviceID, Password: password, LocalAddr: freeLocal(t),
		Expires: 3 * time.Second, Keepalive: 400 * time.Millisecond, MaxKeepaliveMisses: 3,
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second, AuthRetry: time.Minute,
	}
}

// runDevice starts d.Run for the rest of the test and checks it returns
// once the test's context ends.
func runDevice(t *testing.T, d *Device) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func count(c *prometheus.CounterVec, label string) int {
	return int(testutil.ToFloat64(c.WithLabelValues(label)))
}

func TestRegisterThroughKamailio(t *testing.T) {
	for _, transport := range []string{UDP, TCP} {
		t.Run(transport, func(t *testing.T) {
			k := kamailio.Start(t, kamailio.Options{ServerID: serverID, Domain: domain, Password: password, TZ: "Asia/Shanghai"})
			reg := prometheus.NewRegistry()
			d, err := New(testConfig(t, k.Addr(), transport), edgeChannels{}, Options{Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			// Counters exist at 0 before anything happened.
			if n, err := testutil.GatherAndCount(reg, "vigil_gb28181_registers_total", "vigil_gb28181_keepalives_total"); err != nil || n != 6 {
				t.Fatalf("metrics at start: %d series, %v", n, err)
			}
			runDevice(t, d)
			eventually(t, 5*time.Second, "device online", func() bool { return d.Status().Online })
			eventually(t, 2*time.Second, "device in Kamailio's location table", func() bool { return k.Registered(deviceID) })
			loc, _ := k.Locations()
			if !strings.Contains(loc, "sip:"+deviceID+"@127.0.0.1") {
				t.Errorf("contact in ul.dump:\n%s", loc)
			}
			st := d.Status()
			// Kamailio writes the Date in Asia/Shanghai local time, as a
			// platform in China does; read in the configured zone it
			// matches our clock within the round trip and its millisecond
			// truncation.
			if st.ClockSampledAt.IsZero() || st.ClockOffset > 1500*time.Millisecond || st.ClockOffset < -1500*time.Millisecond {
				t.Errorf("clock offset %v sampled at %v, want about 0", st.ClockOffset, st.ClockSampledAt)
			}
			if st.Expires != 3*time.Second || st.RegisteredSince.IsZero() || st.State != StateOnline {
				t.Errorf("status %+v", st)
			}
			// Refresh at 2/3 of 3 s, and keepalives answered 200.
			eventually(t, 6*time.Second, "a refresh and keepalives", func() bool {
				return count(d.m.registers, "ok") >= 2 && count(d.m.keepalives, "ok") >= 3
			})
			if n := count(d.m.keepalives, "missed") + count(d.m.keepalives, "refused"); n != 0 {
				t.Errorf("%d keepalives missed or refused", n)
			}
			if !k.Registered(deviceID) || !d.Status().Online {
				t.Error("registration lost across the refresh")
			}
		})
	}
}

func TestWrongPassword(t *testing.T) {
	k := kamailio.Start(t, kamailio.Options{ServerID: serverID, Domain: domain, Password: password})
	cfg := testConfig(t, k.Addr(), UDP)
	cfg.Password = "not-the-password"
	d, err := New(cfg, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runDevice(t, d)
	eventually(t, 5*time.Second, "registration refused", func() bool { return d.Status().LastError != "" })
	st := d.Status()
	if !strings.Contains(st.LastError, "registration refused: 403 wrong credentials") {
		t.Errorf("last error %q", st.LastError)
	}
	if st.Online || st.State != StateOffline {
		t.Errorf("status %+v", st)
	}
	// Not hammering: the next attempt waits AuthRetry, not RetryMin.
	if wait := st.NextAttempt.Sub(st.LastErrorAt); wait != cfg.AuthRetry {
		t.Errorf("next attempt in %v, want %v", wait, cfg.AuthRetry)
	}
	if n := count(d.m.registers, "refused"); n != 1 {
		t.Errorf("%d refused registrations, want 1", n)
	}
	if k.Registered(deviceID) {
		t.Error("Kamailio registered a wrong password")
	}
}

func TestPlatformRestart(t *testing.T) {
	k := kamailio.Start(t, kamailio.Options{ServerID: serverID, Domain: domain, Password: password})
	cfg := testConfig(t, k.Addr(), UDP)
	cfg.Expires = time.Hour // no refresh: only keepalives can notice the restart
	d, err := New(cfg, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runDevice(t, d)
	eventually(t, 5*time.Second, "device registered", func() bool { return k.Registered(deviceID) })

	// A quick restart: the platform forgets the device and refuses its
	// next keepalive; the device registers again at once.
	k.Restart()
	eventually(t, 5*time.Second, "re-registered after a restart", func() bool {
		return k.Registered(deviceID) && count(d.m.registers, "ok") >= 2
	})
	if n := count(d.m.keepalives, "refused"); n < 1 {
		t.Errorf("%d keepalives refused, want the one that found the platform restarted", n)
	}

	// A platform down for a while: keepalives go unanswered, the device
	// goes offline and retries with backoff until the platform is back.
	k.Stop()
	eventually(t, 10*time.Second, "offline after unanswered keepalives", func() bool { return !d.Status().Online })
	if st := d.Status(); !strings.Contains(st.LastError, "3 keepalives unanswered") {
		t.Errorf("last error %q", st.LastError)
	}
	k.Start()
	eventually(t, 6*time.Second, "registered again", func() bool { return d.Status().Online && k.Registered(deviceID) })
}

// answers reads the SIPp log lines the scenario wrote for each Response
// MESSAGE.
var answerLine = regexp.MustCompile(`answer (\w+) sn=(\d+) device=(\d+) sumnum=(\d*) enc=([\w-]+)`)

func TestPlatformQueriesSIPp(t *testing.T) {
	for _, transport := range []string{UDP, TCP} {
		t.Run(transport, func(t *testing.T) { testPlatformQueries(t, transport) })
	}
}

func testPlatformQueries(t *testing.T, transport string) {
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	platform := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := testConfig(t, platform, transport)
	cfg.Expires, cfg.Keepalive = time.Hour, time.Hour // only the queries' traffic

	// The device cuts the catalog as its own builder does: small pieces
	// over UDP, bigger over TCP.
	clips := &edgeWithClips{}
	d, err := New(cfg, clips, Options{})
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := manscdp.CatalogResponses(manscdp.Header{SN: 1001, DeviceID: deviceID, Charset: manscdp.GB2312}, d.catalogItems(edgeChannels{}.Channels()), splitFor(d.networkName()))
	if err != nil {
		t.Fatal(err)
	}
	if transport == UDP && len(catalog) < 2 {
		t.Fatalf("3 channels in %d UDP message(s): the test wants a split catalog", len(catalog))
	}
	calls := 1 + len(catalog) + 3
	p := sipp.Start(t, sipp.Options{
		Scenario: "testdata/platform_queries.xml", Port: port, Remote: cfg.LocalAddr, Calls: calls, Timeout: 15 * time.Second, TCP: transport == TCP,
		Keys: map[string]string{"dev": deviceID, "cam": cam1, "srv": serverID, "domain": domain},
	})
	runDevice(t, d)
	res := p.Wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s\nlog:\n%s\noutput:\n%s\nmessages:\n%s", res.ExitCode, res.Errors, res.Logs, res.Output, res.Messages)
	}
	got := map[string]int{}
	for _, m := range answerLine.FindAllStringSubmatch(res.Logs, -1) {
		cmd, sn, dev, sum, enc := m[1], m[2], m[3], m[4], m[5]
		got[cmd]++
		wantDev := deviceID
		if cmd == "RecordInfo" {
			wantDev = cam1
		}
		if dev != wantDev {
			t.Errorf("%s answer about %s, want %s", cmd, dev, wantDev)
		}
		want := map[string]string{"Catalog": "1001", "DeviceInfo": "1002", "DeviceStatus": "1003", "RecordInfo": "1004"}[cmd]
		if sn != want {
			t.Errorf("%s answer SN %s, want %s", cmd, sn, want)
		}
		if cmd == "Catalog" && sum != "3" {
			t.Errorf("catalog SumNum %q, want 3", sum)
		}
		if cmd == "RecordInfo" && sum != "2" {
			t.Errorf("record info SumNum %q, want 2", sum)
		}
		// Answers come in the charset the query used.
		wantEnc := map[string]string{"Catalog": "GB2312", "DeviceInfo": "UTF-8", "DeviceStatus": "GB2312", "RecordInfo": "GB2312"}[cmd]
		if enc != wantEnc {
			t.Errorf("%s answer in %s, want %s", cmd, enc, wantEnc)
		}
	}
	if got["Catalog"] != len(catalog) || got["DeviceInfo"] != 1 || got["DeviceStatus"] != 1 || got["RecordInfo"] != 1 {
		t.Errorf("answers %v, want Catalog %d, DeviceInfo 1, DeviceStatus 1, RecordInfo 1\nlog:\n%s", got, len(catalog), res.Logs)
	}
	// The platform's day 2026-12-07 is Beijing time.
	clips.mu.Lock()
	asked := strings.Join(clips.asked, "; ")
	clips.mu.Unlock()
	if want := cam1 + " 2026-12-06T16:00:00Z 2026-12-07T15:59:59Z all"; asked != want {
		t.Errorf("clip store asked %q, want %q", asked, want)
	}
	// The static Date of SIPp's 200 (22:30:46 in Asia/Shanghai) was
	// recorded as the platform's clock, not applied.
	st := d.Status()
	platformAt := time.Date(2026, 12, 7, 14, 30, 46, 0, time.UTC)
	if off := platformAt.Sub(st.ClockSampledAt); (st.ClockOffset - off).Abs() > time.Second {
		t.Errorf("clock offset %v, want about %v", st.ClockOffset, off)
	}
	if n := count(d.m.answers, "ok"); n != len(catalog)+3 {
		t.Errorf("%d answers accepted, want %d", n, len(catalog)+3)
	}
}

func TestKeepaliveSIPp(t *testing.T) {
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, fmt.Sprintf("127.0.0.1:%d", port), UDP)
	cfg.Expires = time.Hour
	cfg.Keepalive = 500 * time.Millisecond
	p := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_keepalive.xml", Port: port, Calls: 4, Timeout: 10 * time.Second})
	d, err := New(cfg, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runDevice(t, d)
	res := p.Wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s\noutput:\n%s", res.ExitCode, res.Errors, res.Output)
	}
	if n := strings.Count(res.Logs, "keepalive sn="); n < 3 {
		t.Errorf("%d keepalives logged, want 3:\n%s", n, res.Logs)
	}
	if !strings.Contains(res.Logs, "device="+deviceID) {
		t.Errorf("keepalives not from %s:\n%s", deviceID, res.Logs)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{ServerID: serverID, ServerAddr: "10.1.2.3:5060", DeviceID: deviceID, Password: "x"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if c := good.withDefaults(); c.ServerDomain != domain || c.Keepalive != time.Minute || c.MaxKeepaliveMisses != 3 || c.Transport != UDP {
		t.Errorf("defaults %+v", c)
	}
	bad := Config{ServerID: "3402000000200000001", ServerAddr: "10.1.2.3", Transport: "sctp", DeviceID: "340200000013200000AB", LocalAddr: "x", TimeZone: "Mars/Olympus"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		"gb28181.server_id: GB ID \"3402000000200000001\" has 19 characters",
		"gb28181.server_addr:", "gb28181.transport: \"sctp\"", "gb28181.device_id:", "gb28181.password: empty",
		"gb28181.local_addr:", "gb28181.time_zone:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	same := good
	same.DeviceID = serverID
	if err := same.Validate(); err == nil || !strings.Contains(err.Error(), "gb28181.device_id: equals server_id") {
		t.Errorf("device ID = server ID: %v", err)
	}
}

// The local address is checked before anything is sent.
func TestRunLocalAddrTaken(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := testConfig(t, "127.0.0.1:5060", UDP)
	cfg.LocalAddr = pc.LocalAddr().String()
	d, err := New(cfg, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gb28181.local_addr") {
		t.Errorf("Run on a taken address: %v", err)
	}
}

// A platform's query reaches the device through its SIP proxy: Kamailio
// routes SIPp's MESSAGE to the device's registered contact (over TCP),
// relays the device's 200, and takes the device's Catalog answers.
func TestQueryThroughKamailio(t *testing.T) {
	k := kamailio.Start(t, kamailio.Options{ServerID: serverID, Domain: domain, Password: password})
	cfg := testConfig(t, k.Addr(), TCP)
	cfg.Expires, cfg.Keepalive = time.Hour, time.Hour
	d, err := New(cfg, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runDevice(t, d)
	eventually(t, 5*time.Second, "device registered", func() bool { return k.Registered(deviceID) })
	res := sipp.Start(t, sipp.Options{Scenario: "testdata/query_via_proxy.xml", Remote: k.Addr(), Calls: 1, Timeout: 10 * time.Second,
		Keys: map[string]string{"dev": deviceID, "srv": serverID, "domain": domain}}).Wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s\nmessages:\n%s", res.ExitCode, res.Errors, res.Messages)
	}
	// Over TCP the whole catalog fits one answer.
	eventually(t, 5*time.Second, "catalog answer accepted by the platform", func() bool { return count(d.m.answers, "ok") == 1 })
	if count(d.m.queries, "Catalog") != 1 || !strings.Contains(k.Log(), "platform MESSAGE from "+deviceID) {
		t.Errorf("queries %d; kamailio log:\n%s", count(d.m.queries, "Catalog"), k.Log())
	}
}

func TestSendAlarmSIPp(t *testing.T) {
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, fmt.Sprintf("127.0.0.1:%d", port), UDP)
	cfg.Expires, cfg.Keepalive = time.Hour, time.Hour
	d, err := New(cfg, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	gateForced := manscdp.Alarm{DeviceID: alarm1, Priority: manscdp.PriorityFirst, Method: manscdp.MethodDevice,
		Time: time.Date(2026, 12, 7, 14, 0, 5, 0, time.UTC), Description: "东门被强行打开"}
	if err := d.SendAlarm(context.Background(), gateForced); err != ErrOffline {
		t.Errorf("SendAlarm before registration: %v, want ErrOffline", err)
	}
	p := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_alarm.xml", Port: port, Calls: 3, Timeout: 10 * time.Second})
	runDevice(t, d)
	eventually(t, 5*time.Second, "registered", func() bool { return d.Status().Online })
	intrusion := manscdp.Alarm{DeviceID: cam1, Priority: manscdp.PrioritySecond, Method: manscdp.MethodVideo, Type: manscdp.VideoIntrusion, EventType: 1,
		Time: time.Date(2026, 12, 7, 14, 0, 6, 0, time.UTC)}
	for _, a := range []manscdp.Alarm{gateForced, intrusion} {
		if err := d.SendAlarm(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	res := p.Wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp exit %d\nerrors:\n%s\noutput:\n%s", res.ExitCode, res.Errors, res.Output)
	}
	for _, want := range []string{
		"alarm device=" + alarm1 + " priority=1 method=2 type= time=2026-12-07T22:00:05",
		"alarm device=" + cam1 + " priority=2 method=5 type=6 time=2026-12-07T22:00:06",
	} {
		if !strings.Contains(res.Logs, want) {
			t.Errorf("no %q in the platform's log:\n%s", want, res.Logs)
		}
	}
	if n := count(d.m.alarms, "ok"); n != 2 {
		t.Errorf("%d alarms accepted, want 2", n)
	}
}

func TestChannelValidate(t *testing.T) {
	for _, c := range (edgeChannels{}).Channels() {
		if err := c.Validate(); err != nil {
			t.Error(err)
		}
	}
	bad := Channel{ID: alarm1, Name: "gate", Kind: KindCamera}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "camera channel: GB ID \""+alarm1+"\" has type code 134 (alarm input)") {
		t.Errorf("alarm ID as camera: %v", err)
	}
}
