package gates

import (
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	good := map[string]string{
		"22:00-06:00":         "22:00-06:00",
		"mon-fri 18:00-07:00": "mon,tue,wed,thu,fri 18:00-07:00",
		"sat,sun 00:00-24:00": "sun,sat 00:00-24:00",
		"fri-mon 23:30-05:15": "sun,mon,fri,sat 23:30-05:15",
		"Wed 9:05-17:00":      "wed 09:05-17:00",
	}
	for in, want := range good {
		w, err := ParseWindow(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if w.String() != want {
			t.Errorf("%q: parsed as %q, want %q", in, w.String(), want)
		}
	}
	for _, bad := range []string{"", "22:00", "22-06", "22:00-22:00", "24:00-06:00", "22:60-06:00", "22:00-25:00", "noon 22:00-06:00", "mon fri 22:00-06:00", "22:0-06:00", "-1:00-06:00"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestArmedAtAcrossMidnight: a window that runs past midnight belongs to
// the day it starts on, in the gate's time zone, not UTC.
func TestArmedAtAcrossMidnight(t *testing.T) {
	loc := shanghai(t)
	mustWin := func(s string) Window {
		w, err := ParseWindow(s)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	nightly := Arming{Windows: []Window{mustWin("22:00-06:00")}, Location: loc}
	weekend := Arming{Windows: []Window{mustWin("fri 22:00-06:00")}, Location: loc}
	at := func(day, h, m int) time.Time { return time.Date(2026, 3, day, h, m, 0, 0, loc) } // 13 March 2026 is a Friday
	tests := []struct {
		name string
		a    Arming
		t    time.Time
		want bool
	}{
		{"before the window", nightly, at(10, 21, 59), false},
		{"at its start", nightly, at(10, 22, 0), true},
		{"just before midnight", nightly, at(10, 23, 59), true},
		{"midnight", nightly, at(11, 0, 0), true},
		{"morning part", nightly, at(11, 5, 59), true},
		{"at its end", nightly, at(11, 6, 0), false},
		{"midday", nightly, at(11, 12, 0), false},
		{"the same instant in UTC is not what counts", nightly, time.Date(2026, 3, 10, 14, 30, 0, 0, time.UTC), true}, // 22:30 in Shanghai
		{"friday night", weekend, at(13, 23, 0), true},
		{"saturday morning belongs to friday's window", weekend, at(14, 5, 0), true},
		{"saturday night is not armed", weekend, at(14, 23, 0), false},
		{"friday morning belongs to thursday", weekend, at(13, 5, 0), false},
		{"always", Arming{Always: true}, at(10, 12, 0), true},
		{"no windows: never", Arming{Location: loc}, at(10, 23, 0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.ArmedAt(tc.t); got != tc.want {
				t.Fatalf("ArmedAt(%v) = %v, want %v", tc.t, got, tc.want)
			}
		})
	}
}

func TestDefaultTimeZoneIsEmbedded(t *testing.T) {
	loc, err := LoadLocation("")
	if err != nil {
		t.Fatal(err)
	}
	if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Zone(); off != 8*3600 {
		t.Fatalf("Asia/Shanghai offset %d", off)
	}
	if c := (Config{ID: "g"}).WithDefaults(); c.Arming.Location == nil || c.Arming.Location.String() != DefaultTimeZone {
		t.Fatalf("default location %v", c.Arming.Location)
	}
}

// TestNextChange: the instant a schedule next flips, in the gate's zone,
// across midnight, weekends and a daylight-saving jump; none for
// schedules that never change.
func TestNextChange(t *testing.T) {
	loc := shanghai(t)
	berlin, err := LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	mustWin := func(s string) Window {
		w, err := ParseWindow(s)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	nightly := Arming{Windows: []Window{mustWin("22:00-06:00")}, Location: loc}
	weeknights := Arming{Windows: []Window{mustWin("mon-fri 18:00-07:00")}, Location: loc}
	at := func(day, h, m, s int) time.Time { return time.Date(2026, 3, day, h, m, s, 0, loc) } // 13 March 2026 is a Friday
	tests := []struct {
		name string
		a    Arming
		t    time.Time
		want time.Time // zero: never
	}{
		{"midday: the window's start", nightly, at(10, 12, 0, 0), at(10, 22, 0, 0)},
		{"a second before it", nightly, at(10, 21, 59, 59), at(10, 22, 0, 0)},
		{"at its start: its end", nightly, at(10, 22, 0, 0), at(11, 6, 0, 0)},
		{"after midnight: its end", nightly, at(11, 0, 30, 15), at(11, 6, 0, 0)},
		{"friday evening: saturday morning", weeknights, at(13, 19, 0, 0), at(14, 7, 0, 0)},
		{"saturday: monday evening", weeknights, at(14, 12, 0, 0), at(16, 18, 0, 0)},
		{"always armed: never", Arming{Always: true, Location: loc}, at(10, 12, 0, 0), time.Time{}},
		{"no windows: never", Arming{Location: loc}, at(10, 12, 0, 0), time.Time{}},
		{"the whole week: never", Arming{Windows: []Window{mustWin("00:00-24:00")}, Location: loc}, at(10, 12, 0, 0), time.Time{}},
		// 29 March 2026, 02:00 in Berlin is 03:00 (CEST): the window
		// 01:00-04:00 is two hours long that night.
		{"daylight saving", Arming{Windows: []Window{mustWin("01:00-04:00")}, Location: berlin}, time.Date(2026, 3, 29, 1, 30, 0, 0, berlin), time.Date(2026, 3, 29, 4, 0, 0, 0, berlin)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.a.NextChange(tc.t)
			if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
				t.Fatalf("NextChange(%v) = %v %v, want %v", tc.t, got, ok, tc.want)
			}
			if ok && (tc.a.ArmedAt(got) == tc.a.ArmedAt(tc.t) || tc.a.ArmedAt(got.Add(-time.Nanosecond)) != tc.a.ArmedAt(tc.t)) {
				t.Fatalf("%v is not where the schedule changes", got)
			}
		})
	}
}
