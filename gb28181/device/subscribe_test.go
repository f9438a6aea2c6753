package device

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
	"github.com/vigil-perimeter/vigil/internal/testrig/sipp"
)

func subCount(d *Device, kind string) int {
	return int(testutil.ToFloat64(d.m.subs.WithLabelValues(kind)))
}

// An alarm subscription with a filter (priorities 1-2, device or video
// alarms): a matching alarm goes as MESSAGE and as NOTIFY, a priority-3
// one only as MESSAGE; after the platform unsubscribes, nothing more is
// notified.
func TestAlarmSubscriptionSIPp(t *testing.T) {
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, fmt.Sprintf("127.0.0.1:%d", port), UDP)
	cfg.Expires, cfg.Keepalive = time.Hour, time.Hour
	platform := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_alarm.xml", Port: port, Calls: 1 + 3, Timeout: 15 * time.Second})
	d, err := New(cfg, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runDevice(t, d)
	eventually(t, 5*time.Second, "registered", func() bool { return d.Status().Online })

	sub := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_subscribe_alarm.xml", Remote: cfg.LocalAddr, Calls: 1, Timeout: 10 * time.Second, Keys: platformKeys})
	eventually(t, 5*time.Second, "alarm subscription", func() bool { return subCount(d, "Alarm") == 1 })
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 14, 0, 5, 0, time.UTC)
	lowBattery := manscdp.Alarm{DeviceID: alarm1, Priority: manscdp.PriorityThird, Method: manscdp.MethodDevice, Time: at}
	gateForced := manscdp.Alarm{DeviceID: alarm1, Priority: manscdp.PriorityFirst, Method: manscdp.MethodDevice, Time: at}
	for _, a := range []manscdp.Alarm{lowBattery, gateForced} {
		if err := d.SendAlarm(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	res := sippOK(t, sub)
	if want := "notify alarm device=" + alarm1 + " priority=1 method=2"; !strings.Contains(res.Logs, want) {
		t.Errorf("no %q in:\n%s", want, res.Logs)
	}
	if n := strings.Count(res.Messages, "NOTIFY sip:"); n != 1 {
		t.Errorf("%d NOTIFYs, want 1 (the priority-3 alarm is filtered out)", n)
	}
	if subCount(d, "Alarm") != 0 {
		t.Error("subscription kept after Expires: 0")
	}
	// Unsubscribed: the next alarm is a MESSAGE only.
	if err := d.SendAlarm(ctx, gateForced); err != nil {
		t.Fatal(err)
	}
	if n := count(d.m.notifies, "ok") + count(d.m.notifies, "failed"); n != 1 {
		t.Errorf("%d NOTIFYs sent, want 1", n)
	}
	if pres := platform.Wait(); pres.ExitCode != 0 {
		t.Errorf("platform sipp exit %d: the three alarm MESSAGEs did not all arrive\n%s", pres.ExitCode, pres.Errors)
	}
}

// channelSet is a Provider whose channels the test changes.
type channelSet struct {
	mu  sync.Mutex
	chs []Channel
}

func (c *channelSet) Channels() []Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Channel(nil), c.chs...)
}

func (c *channelSet) Health() Health { return Health{OK: true} }

func (c *channelSet) change(f func([]Channel) []Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chs = f(c.chs)
}

const cam3 = "34020000001320000003"

// A catalog subscription: camera 2 comes online and the gate contact is
// removed (one NOTIFY: ON and DEL), a camera is added (ADD); after the
// platform unsubscribes a change notifies nobody.
func TestCatalogSubscriptionSIPp(t *testing.T) {
	chs := &channelSet{chs: edgeChannels{}.Channels()}
	cfg := testConfig(t, quietPlatform(t), UDP)
	cfg.Expires, cfg.Keepalive = time.Hour, time.Hour
	d, err := New(cfg, chs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runDevice(t, d)
	p := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_subscribe_catalog.xml", Remote: cfg.LocalAddr, Calls: 1, Timeout: 10 * time.Second, Keys: platformKeys})
	eventually(t, 5*time.Second, "catalog subscription", func() bool { return subCount(d, "Catalog") == 1 })
	ctx := context.Background()
	chs.change(func(c []Channel) []Channel {
		c[1].Online = true
		return c[:2]
	})
	if err := d.CatalogChanged(ctx); err != nil {
		t.Fatal(err)
	}
	chs.change(func(c []Channel) []Channel {
		return append(c, Channel{ID: cam3, Name: "West gate", Kind: KindCamera, Online: true})
	})
	if err := d.CatalogChanged(ctx); err != nil {
		t.Fatal(err)
	}
	res := sippOK(t, p)
	item := regexp.MustCompile(`(?s)<Item>\s*<DeviceID>(\d{20})</DeviceID>.*?<Event>([A-Z]+)</Event>\s*</Item>`)
	var got []string
	for _, e := range item.FindAllStringSubmatch(res.Messages, -1) {
		got = append(got, e[2]+" "+e[1])
	}
	sort.Strings(got)
	want := []string{"ADD " + cam3, "DEL " + alarm1, "ON " + cam2}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("catalog events %v, want %v\n%s", got, want, res.Messages)
	}
	if subCount(d, "Catalog") != 0 {
		t.Error("subscription kept after Expires: 0")
	}
	chs.change(func(c []Channel) []Channel { return c[:1] })
	if err := d.CatalogChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(d.m.notifies, "ok") + count(d.m.notifies, "failed"); n != 2 {
		t.Errorf("%d NOTIFYs sent, want 2", n)
	}
}

func TestCatalogEvents(t *testing.T) {
	d, err := New(Config{ServerID: serverID, ServerAddr: "127.0.0.1:5060", DeviceID: deviceID, Password: "x"}, edgeChannels{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := edgeChannels{}.Channels()
	now := edgeChannels{}.Channels()
	now[0].Name = "村口东侧大门（新）" // renamed: UPDATE
	now[1].Online = true      // ON only
	now[2].Armed = false      // not a catalog field: nothing
	var got []string
	for _, e := range d.catalogEvents(before, now) {
		got = append(got, e.Event+" "+e.Item.DeviceID)
	}
	if want := "UPDATE " + cam1 + ",ON " + cam2; strings.Join(got, ",") != want {
		t.Errorf("events %v, want %s", got, want)
	}
	now[0].Online = false // OFF and UPDATE
	got = got[:0]
	for _, e := range d.catalogEvents(before, now[:2]) {
		got = append(got, e.Event+" "+e.Item.DeviceID)
	}
	if want := "OFF " + cam1 + ",UPDATE " + cam1 + ",ON " + cam2 + ",DEL " + alarm1; strings.Join(got, ",") != want {
		t.Errorf("events %v, want %s", got, want)
	}
	bodies, err := manscdp.CatalogNotify(manscdp.Header{SN: 7, DeviceID: deviceID, Charset: manscdp.UTF8}, d.catalogEvents(before, now[:2]), manscdp.TCPSplit)
	if err != nil || len(bodies) != 1 {
		t.Fatalf("%d bodies, %v", len(bodies), err)
	}
	for _, want := range []string{"<Notify>", "<CmdType>Catalog</CmdType>", "<SumNum>4</SumNum>", `<DeviceList Num="4">`,
		"<Item>\n   <DeviceID>" + alarm1 + "</DeviceID>\n   <Event>DEL</Event>\n  </Item>", "<Status>OFF</Status>", "<Event>OFF</Event>"} {
		if !strings.Contains(string(bodies[0]), want) {
			t.Errorf("no %q in:\n%s", want, bodies[0])
		}
	}
}

func TestAlarmFilter(t *testing.T) {
	a := manscdp.Alarm{DeviceID: alarm1, Priority: 2, Method: manscdp.MethodVideo, Type: manscdp.VideoIntrusion}
	for _, c := range []struct {
		sub  subscription
		want bool
	}{
		{subscription{deviceID: deviceID}, true},
		{subscription{deviceID: alarm1}, true},
		{subscription{deviceID: cam1}, false},
		{subscription{deviceID: deviceID, minPrio: 1, maxPrio: 1}, false},
		{subscription{deviceID: deviceID, minPrio: 1, maxPrio: 2}, true},
		{subscription{deviceID: deviceID, minPrio: 3}, false},
		{subscription{deviceID: deviceID, methods: "0"}, true},
		{subscription{deviceID: deviceID, methods: "12"}, false},
		{subscription{deviceID: deviceID, methods: "25"}, true},
		{subscription{deviceID: deviceID, alarmType: "6"}, true},
		{subscription{deviceID: deviceID, alarmType: "5"}, false},
	} {
		if got := c.sub.matches(a, deviceID); got != c.want {
			t.Errorf("%+v matches %v, want %v", c.sub, got, c.want)
		}
	}
}

// controllable is an edge that can reboot, arm and reset its inputs.
type controllable struct {
	edgeChannels
	mu    sync.Mutex
	calls []string
}

func (c *controllable) note(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
	return nil
}

func (c *controllable) Reboot(ctx context.Context) error { return c.note("reboot") }
func (c *controllable) SetGuard(ctx context.Context, id string, armed bool) error {
	return c.note(fmt.Sprintf("guard %s %v", id, armed))
}
func (c *controllable) ResetAlarm(ctx context.Context, id string) error {
	return c.note("reset " + id)
}

// DeviceControl: a provider with the optional interfaces gets TeleBoot,
// SetGuard and ResetAlarm, and the platform the Response with Result OK
// for the last two; a provider without them makes the device answer 501.
func TestDeviceControlSIPp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		prov  Provider
		calls int
		want  []string
	}{
		{"honoured", &controllable{}, 3, []string{"control TeleBoot 200", "control SetGuard 200", "control ResetAlarm 200",
			"control answer sn=4002 result=OK", "control answer sn=4003 result=OK"}},
		{"refused", edgeChannels{}, 1, []string{"control TeleBoot 501", "control SetGuard 501", "control ResetAlarm 501"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, err := sipp.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, fmt.Sprintf("127.0.0.1:%d", port), UDP)
			cfg.Expires, cfg.Keepalive = time.Hour, time.Hour
			p := sipp.Start(t, sipp.Options{Scenario: "testdata/platform_control.xml", Port: port, Remote: cfg.LocalAddr, Calls: tc.calls, Timeout: 10 * time.Second, Keys: platformKeys})
			d, err := New(cfg, tc.prov, Options{})
			if err != nil {
				t.Fatal(err)
			}
			runDevice(t, d)
			res := sippOK(t, p)
			for _, w := range tc.want {
				if !strings.Contains(res.Logs, w) {
					t.Errorf("no %q in:\n%s", w, res.Logs)
				}
			}
			if c, ok := tc.prov.(*controllable); ok {
				c.mu.Lock()
				calls := append([]string(nil), c.calls...)
				c.mu.Unlock()
				// The device answers 200 before it acts: SIPp's next
				// command may overtake a reboot.
				sort.Strings(calls)
				if got, want := strings.Join(calls, ","), "guard "+alarm1+" true,reboot,reset "+alarm1; got != want {
					t.Errorf("provider calls %q, want %q", got, want)
				}
			}
		})
	}
}
