package edge

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

type noClipConditions struct{}

func (noClipConditions) Conditions() []clips.Condition { return nil }

// gbTestSide is a GB side of a node with camera north, gate main and
// sensor box1-cable mapped to channels; its device is never run: it stays
// offline.
func gbTestSide(t *testing.T, ctx context.Context) (*gbSide, *prometheus.Registry) {
	t.Helper()
	cfg := conf.Config{EdgeID: "gate-1", SiteID: "village/north",
		GB28181: &conf.GB28181Config{ServerID: "34020000002000000001", ServerAddr: "127.0.0.1:5060", DeviceID: "34020000001180000001",
			Password: "x", LocalAddr: "127.0.0.1:0",
			Channels: []conf.GBChannelConfig{{Camera: "north", ID: "34020000001320000001"}, {Gate: "main", ID: "34020000001340000001"},
				{Sensor: "box1-cable", ID: "34020000001340000002"}}}}
	reg := prometheus.NewRegistry()
	g, err := newGBSide(cfg, gbDeps{conf: newConfigEngine(cfg, Options{}, testrig.Logger(t)), clips: noClipConditions{},
		nodeDone: ctx, reg: reg, log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return g, reg
}

// Each alert kind goes up with the codes of GB/T 28181-2016 A.2.5.5 on the
// channel of its source; what has no channel, green alerts and a disarmed
// camera's motion do not.
func TestGBAlarmCodes(t *testing.T) {
	g, _ := gbTestSide(t, context.Background())
	at := time.Date(2026, 12, 7, 14, 0, 5, 0, time.UTC)
	cam, gate, sensor := "34020000001320000001", "34020000001340000001", "34020000001340000002"
	for _, tc := range []struct {
		source, kind string
		sev          wire.Severity
		want         *manscdp.Alarm
	}{
		{"main", "gate.forced", wire.Red, &manscdp.Alarm{DeviceID: gate, Priority: 1, Method: manscdp.MethodDevice}},
		{"main", "gate.sos", wire.Red, &manscdp.Alarm{DeviceID: gate, Priority: 1, Method: manscdp.MethodDevice}},
		{"main", "gate.held_open", wire.Yellow, &manscdp.Alarm{DeviceID: gate, Priority: 3, Method: manscdp.MethodDevice}},
		{"main", "gate.tamper", wire.Red, &manscdp.Alarm{DeviceID: gate, Priority: 1, Method: manscdp.MethodDevice, Type: manscdp.DeviceTamper}},
		{"main", "gate.silent", wire.Yellow, &manscdp.Alarm{DeviceID: gate, Priority: 3, Method: manscdp.MethodDeviceFault}},
		{"main", "gate.passage", wire.Green, nil},
		{"north", "motion", wire.Red, &manscdp.Alarm{DeviceID: cam, Priority: 1, Method: manscdp.MethodVideo, Type: manscdp.VideoIntrusion, EventType: 1}},
		{"north", "motion", wire.Yellow, nil},
		{"north", wire.KindPerimeterCrossing, wire.Red, &manscdp.Alarm{DeviceID: cam, Priority: 1, Method: manscdp.MethodVideo, Type: manscdp.VideoTripwire}},
		{"north", wire.KindPerimeterLoiter, wire.Yellow, &manscdp.Alarm{DeviceID: cam, Priority: 3, Method: manscdp.MethodVideo, Type: manscdp.VideoLoitering}},
		{"north", "tamper.covered", wire.Red, &manscdp.Alarm{DeviceID: cam, Priority: 1, Method: manscdp.MethodVideo, Type: manscdp.VideoAbnormal}},
		{"north", "camera.analysis_degraded", wire.Yellow, &manscdp.Alarm{DeviceID: cam, Priority: 3, Method: manscdp.MethodDeviceFault}},
		{"box1-cable", wire.KindSensorAlarm, wire.Red, &manscdp.Alarm{DeviceID: sensor, Priority: 1, Method: manscdp.MethodDevice}},
		{"box1-cable", wire.KindSensorWarning, wire.Yellow, &manscdp.Alarm{DeviceID: sensor, Priority: 3, Method: manscdp.MethodDevice}},
		{"box1-cable", wire.KindSensorSilent, wire.Yellow, &manscdp.Alarm{DeviceID: sensor, Priority: 3, Method: manscdp.MethodDeviceFault}},
		{"side", "gate.forced", wire.Red, nil},           // no channel
		{"main", "motion", wire.Red, nil},                // a camera named main has none
		{"edge", "system.disk_full", wire.Red, nil},      // not a channel's
		{"north", "gate.forced", wire.Red, nil},          // a gate named north has none
		{"box1-cable", "tamper.covered", wire.Red, nil},  // nor a camera named box1-cable
		{"main", "gate.forced", wire.Severity("x"), nil}, // not red or yellow
	} {
		t.Run(tc.source+"/"+tc.kind+"/"+string(tc.sev), func(t *testing.T) {
			got, ok := g.alarmFor(wire.Alert{Source: tc.source, Kind: tc.kind, Severity: tc.sev, Time: at, Summary: "s"})
			if tc.want == nil {
				if ok {
					t.Fatalf("sent: %+v", got)
				}
				return
			}
			want := *tc.want
			want.Time, want.Description = at, "s"
			if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("alarm %+v (%v), want %+v", got, ok, want)
			}
			// The platform's body builds from it.
			if _, err := manscdp.AlarmNotify(manscdp.Header{SN: 1, DeviceID: got.DeviceID}, got, time.UTC); err != nil {
				t.Error(err)
			}
		})
	}
	long := strings.Repeat("入侵", 80)
	a, _ := g.alarmFor(wire.Alert{Source: "main", Kind: "gate.forced", Severity: wire.Red, Summary: long})
	if n := len([]rune(a.Description)); n != gbDescriptionMax || !strings.HasSuffix(a.Description, "…") {
		t.Errorf("description of %d runes: %q", n, a.Description)
	}
}

// While the platform is unreachable, the last 100 alarms wait; older and
// surplus ones are dropped and counted.
func TestGBAlarmQueueBounds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g, reg := gbTestSide(t, ctx)
	var skew atomic.Int64
	g.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	done := make(chan struct{})
	go func() { defer close(done); g.forward(ctx) }()
	defer func() { cancel(); <-done }()

	dropped := func(reason string) int {
		return int(testutil.ToFloat64(g.dropped.WithLabelValues(reason)))
	}
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not so: %s (pending %d, full %d, expired %d)", what, g.pending.Load(), dropped("queue_full"), dropped("expired"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := range gbPendingMax + 5 {
		g.hub.Publish(wire.Alert{ID: fmt.Sprint(i), Source: "main", Kind: "gate.forced", Severity: wire.Red, Time: time.Now()})
		if i%50 == 0 {
			waitUntil("the forwarder took them", func() bool { return int(g.pending.Load()) == min(i+1, gbPendingMax) })
		}
	}
	g.hub.Publish(wire.Alert{ID: "green", Source: "main", Kind: "gate.passage", Severity: wire.Green})
	waitUntil("100 waiting, 5 dropped", func() bool { return g.pending.Load() == gbPendingMax && dropped("queue_full") == 5 })
	if n := testutil.ToFloat64(g.pendingGauge); n != gbPendingMax {
		t.Errorf("pending gauge %v", n)
	}
	if st := g.status(); st.PendingAlarms != gbPendingMax || st.DroppedAlarms != 5 || st.Online {
		t.Errorf("status %+v", st)
	}
	// Ten minutes on, they are too old for the platform.
	skew.Store(int64(gbPendingAge + time.Second))
	waitUntil("all expired", func() bool { return g.pending.Load() == 0 && dropped("expired") == gbPendingMax })
	if n, err := testutil.GatherAndCount(reg, "vigil_edge_gb28181_alarms_dropped_total"); err != nil || n != 3 {
		t.Errorf("%d dropped series, %v", n, err)
	}
}

// An alert the platform was told of as yellow goes up again, once, as a
// red alarm on its channel when an update escalates it; other updates,
// and escalations of alerts never sent up, do not.
func TestGBEscalationGoesUp(t *testing.T) {
	g, _ := gbTestSide(t, context.Background())
	var alerts []wire.Alert
	var updates []wire.AlertUpdate
	raise := g.observe(func(a wire.Alert) { alerts = append(alerts, a) })
	update := g.observeUpdates(func(u wire.AlertUpdate) { updates = append(updates, u) })
	at := time.Date(2026, 12, 7, 14, 0, 5, 0, time.UTC)
	raise(wire.Alert{ID: "held", Source: "main", Kind: "gate.held_open", Severity: wire.Yellow, Time: at, Summary: "Gate held open"})
	update(wire.AlertUpdate{ID: "u1", AlertID: "held", Time: at.Add(time.Second), Summary: "still open"})
	update(wire.AlertUpdate{ID: "u2", AlertID: "held", Time: at.Add(time.Minute), Severity: wire.Red, Summary: "Gate held open 1 min: red"})
	update(wire.AlertUpdate{ID: "u3", AlertID: "held", Time: at.Add(2 * time.Minute), Severity: wire.Red, Summary: "again"})
	update(wire.AlertUpdate{ID: "u4", AlertID: "unknown", Time: at, Severity: wire.Red, Summary: "never sent up"})
	if len(alerts) != 1 || len(updates) != 4 {
		t.Fatalf("the hooks before: %d alerts, %d updates", len(alerts), len(updates))
	}
	var got []wire.Alert
	for len(got) < 2 {
		select {
		case a := <-g.sub.C():
			got = append(got, a)
		case <-time.After(time.Second):
			t.Fatalf("published %+v, want the alert and its escalation", got)
		}
	}
	select {
	case a := <-g.sub.C():
		t.Fatalf("published more: %+v", a)
	case <-time.After(100 * time.Millisecond):
	}
	esc := got[1]
	al, ok := g.alarmFor(esc)
	if esc.Severity != wire.Red || esc.Summary != "Gate held open 1 min: red" || !esc.Time.Equal(at.Add(time.Minute)) ||
		!ok || al.Priority != 1 || al.DeviceID != "34020000001340000001" {
		t.Errorf("escalation %+v → alarm %+v %v", esc, al, ok)
	}
}
