package gates

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	// Edge boxes are minimal Debian installs that may lack /usr/share/zoneinfo;
	// the schedule must still know Beijing time.
	_ "time/tzdata"
)

// DefaultTimeZone is where arming schedules are read when a gate names
// none: the villages Vigil guards keep Beijing time.
const DefaultTimeZone = "Asia/Shanghai"

// Window is one arming period in local wall-clock time, e.g. 22:00-06:00.
// A window whose end is not after its start runs past midnight and belongs
// to the day it starts on: "fri 22:00-06:00" is Friday night into Saturday.
type Window struct {
	Days     [7]bool // indexed by time.Weekday; the day the window starts
	From, To int     // minutes since local midnight; To may be 1440 (24:00)
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseWindow reads "HH:MM-HH:MM", optionally preceded by days:
// "22:00-06:00", "mon-fri 18:00-07:00", "sat,sun 00:00-24:00".
func ParseWindow(s string) (Window, error) {
	var w Window
	fields := strings.Fields(s)
	var days, span string
	switch len(fields) {
	case 1:
		span = fields[0]
		for i := range w.Days {
			w.Days[i] = true
		}
	case 2:
		days, span = fields[0], fields[1]
		if err := parseDays(days, &w.Days); err != nil {
			return w, err
		}
	default:
		return w, fmt.Errorf("%q: want [DAYS] HH:MM-HH:MM, e.g. \"22:00-06:00\" or \"mon-fri 18:00-07:00\"", s)
	}
	from, to, ok := strings.Cut(span, "-")
	if !ok {
		return w, fmt.Errorf("%q: want HH:MM-HH:MM", span)
	}
	var err error
	if w.From, err = parseClock(from, false); err != nil {
		return w, err
	}
	if w.To, err = parseClock(to, true); err != nil {
		return w, err
	}
	if w.From == w.To {
		return w, fmt.Errorf("%q: start and end are the same; write 00:00-24:00 for a whole day", span)
	}
	return w, nil
}

func parseClock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(mm) != 2 || h < 0 || m < 0 || m > 59 {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	v := h*60 + m
	if v > 24*60 || (v == 24*60 && !end) {
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 24:00)", s)
	}
	return v, nil
}

// parseDays reads "mon-fri", "sat,sun", "mon,wed-fri".
func parseDays(s string, out *[7]bool) error {
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, ok1 := dayIndex(a)
		to, ok2 := from, true
		if isRange {
			to, ok2 = dayIndex(b)
		}
		if !ok1 || !ok2 {
			return fmt.Errorf("%q: days are mon, tue, wed, thu, fri, sat, sun, as a list or range", s)
		}
		for d := from; ; d = (d + 1) % 7 {
			out[d] = true
			if d == to {
				break
			}
		}
	}
	return nil
}

func dayIndex(s string) (int, bool) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) {
			return i, true
		}
	}
	return 0, false
}

// String writes the window back in ParseWindow's form.
func (w Window) String() string {
	clock := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	span := clock(w.From) + "-" + clock(w.To)
	var days []string
	for i, on := range w.Days {
		if on {
			days = append(days, dayNames[i])
		}
	}
	if len(days) == 7 {
		return span
	}
	return strings.Join(days, ",") + " " + span
}

// contains reports whether local wall-clock time t lies in the window.
func (w Window) contains(t time.Time) bool {
	min := t.Hour()*60 + t.Minute()
	day := int(t.Weekday())
	if w.From < w.To {
		return w.Days[day] && min >= w.From && min < w.To
	}
	// Past midnight: the evening part belongs to today, the morning part to
	// the window that started yesterday.
	yesterday := (day + 6) % 7
	return (w.Days[day] && min >= w.From) || (w.Days[yesterday] && min < w.To)
}

// Arming says when a gate is armed. While armed, an opening without a grant
// is a forced entry (red) and presence is an intrusion; while disarmed an
// opening without a grant is a normal passage. A grant always admits its
// one passage, armed or not. A keypad's arm or disarm overrides the
// schedule until its next change (Machine).
type Arming struct {
	Always   bool     // armed around the clock (a gate with a card reader)
	Windows  []Window // otherwise armed inside any of these; none = never armed
	Location *time.Location
}

// ArmedAt reports whether the gate is armed at instant t.
func (a Arming) ArmedAt(t time.Time) bool {
	if a.Always {
		return true
	}
	loc := a.Location
	if loc == nil {
		loc = time.UTC // Config.WithDefaults sets the real zone
	}
	lt := t.In(loc)
	for _, w := range a.Windows {
		if w.contains(lt) {
			return true
		}
	}
	return false
}

// LoadLocation is time.LoadLocation with DefaultTimeZone for "".
func LoadLocation(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimeZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return loc, nil
}

// maxScheduleScan bounds NextChange: every schedule repeats weekly, so a
// change that is coming comes within a week and a day.
const maxScheduleScan = 8 * 24 * time.Hour

// NextChange is the first instant after t at which ArmedAt(t) no longer
// holds: a window starting or ending. ok is false when the schedule never
// changes (Always, no windows, or windows covering the whole week).
func (a Arming) NextChange(t time.Time) (next time.Time, ok bool) {
	if a.Always || len(a.Windows) == 0 {
		return time.Time{}, false
	}
	// Windows begin and end on whole local minutes, and every zone's
	// offset is a whole number of minutes: the state can only change on
	// a minute of absolute time.
	now := a.ArmedAt(t)
	for m := t.Truncate(time.Minute).Add(time.Minute); m.Sub(t) <= maxScheduleScan; m = m.Add(time.Minute) {
		if a.ArmedAt(m) != now {
			return m, true
		}
	}
	return time.Time{}, false
}
