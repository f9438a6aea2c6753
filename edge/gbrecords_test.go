package edge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
	"github.com/vigil-perimeter/vigil/internal/testrig"
)

// TestGBRecordInfo answers RecordInfo from a real clip store: the 30 s
// recorded from 11:59:50 UTC are two time items, cut at the whole hour,
// written in the platform's zone (UTC+8) with the recorder's ID and their
// bytes; an alert's pinned evidence is an alarm item clipped to what was
// recorded; all lists both; manual and a window without video list
// nothing; an unmapped channel is refused.
func TestGBRecordInfo(t *testing.T) {
	store := gbRecordedStore(t)
	if _, err := store.PinRange("alert-1", "north", gbEpoch.Add(-time.Minute), gbEpoch.Add(5*time.Second), "intrusion"); err != nil {
		t.Fatal(err)
	}
	r := &gbRecords{store: store, camera: func(ch string) (string, bool) { return "north", ch == gbTestChannel },
		loc: time.FixedZone("CST", 8*3600), recorderID: "34020000001180000001", log: testrig.Logger(t)}
	ctx := context.Background()
	list := func(typ string, from, to time.Time) []string {
		t.Helper()
		items, err := r.Records(ctx, gbTestChannel, from, to, typ)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var out []string
		for _, it := range items {
			if it.DeviceID != gbTestChannel || it.RecorderID != "34020000001180000001" || it.Name != "north" {
				t.Errorf("%s: item %+v", typ, it)
			}
			out = append(out, fmt.Sprintf("%s %s..%s %t", it.Type, it.StartTime, it.EndTime, it.FileSize > 0))
		}
		return out
	}
	day := func(h int) time.Time { return time.Date(2026, 3, 1, h, 0, 0, 0, time.UTC) }
	check := func(typ string, got []string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %q\nwant %q", typ, got, want)
		}
	}
	timeItems := []string{"time 2026-03-01T19:59:50..2026-03-01T20:00:00 true", "time 2026-03-01T20:00:00..2026-03-01T20:00:20 true"}
	alarm := "alarm 2026-03-01T19:59:50..2026-03-01T19:59:55 false"
	check("time", list(manscdp.RecordTime, day(11), day(13)), timeItems...)
	check("alarm", list(manscdp.RecordAlarm, day(11), day(13)), alarm)
	check("all", list(manscdp.RecordAll, day(11), day(13)), append(timeItems, alarm)...)
	check("manual", list(manscdp.RecordManual, day(11), day(13)))
	check("a window without video", list(manscdp.RecordAll, day(14), day(15)))
	// A window inside the recording clips its items.
	check("clipped", list(manscdp.RecordTime, gbEpoch.Add(5*time.Second), gbEpoch.Add(15*time.Second)),
		"time 2026-03-01T19:59:55..2026-03-01T20:00:00 true", "time 2026-03-01T20:00:00..2026-03-01T20:00:05 true")

	var se *device.StatusError
	if _, err := r.Records(ctx, "34020000001320000099", day(11), day(13), manscdp.RecordAll); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("unmapped channel: %v, want 404", err)
	}
}
