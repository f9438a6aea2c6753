package gates

import (
	"slices"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Cause is why a gate alert was raised; the edge sends it to central as
// kind "gate.<cause>".
type Cause string

// Causes and their severity (ARCHITECTURE.md, decision 6).
const (
	CausePassage    Cause = "passage"     // green: opened with a grant, or while disarmed
	CauseForced     Cause = "forced"      // red: opened without a grant while armed
	CauseHeldOpen   Cause = "held_open"   // yellow, red after the second limit; green when closed
	CauseSOS        Cause = "sos"         // red: booth alarm button
	CauseSmoke      Cause = "smoke"       // red; green when cleared
	CauseGas        Cause = "gas"         // red; green when cleared
	CauseWaterLeak  Cause = "water_leak"  // red; green when cleared
	CauseTamper     Cause = "tamper"      // red; green when cleared
	CauseIntrusion  Cause = "intrusion"   // red: presence sensor while armed
	CauseSilent     Cause = "silent"      // yellow: device offline or quiet too long; green when back
	CauseBatteryLow Cause = "battery_low" // yellow; green when replaced
	CauseArming     Cause = "arming"      // green: armed or disarmed from a keypad (a notice, never folded)
	CauseWrongCode  Cause = "wrong_code"  // yellow: a keypad's arm or disarm refused for a wrong or missing code
)

// allCauses lists every cause, in the order of the constants above.
var allCauses = []Cause{CausePassage, CauseForced, CauseHeldOpen, CauseSOS, CauseSmoke, CauseGas, CauseWaterLeak,
	CauseTamper, CauseIntrusion, CauseSilent, CauseBatteryLow, CauseArming, CauseWrongCode}

// Causes returns every cause (for metrics that must exist before the
// first alert of each cause).
func Causes() []Cause { return slices.Clone(allCauses) }

// Alert is what a machine outputs. Update false is a new alert. While it
// stays open, later outputs for the same Gate, Key and Device are updates
// (Update true): a higher Count (the cause recurred and was folded in), a
// new Severity (held open turned red), or Cleared (the condition ended;
// green). A level cause that recurs within the fold window after clearing
// is a new alert again, with the running Count ("smoke again, 2nd time"),
// since the old one may already be resolved.
type Alert struct {
	Gate     string        `json:"gate"`
	Key      Cause         `json:"key"`
	Device   string        `json:"device,omitempty"` // the device it concerns; empty for gate-wide causes (passage, forced, held_open)
	Severity wire.Severity `json:"severity"`
	Count    int           `json:"count"` // occurrences folded into this alert so far, at least 1
	Summary  string        `json:"summary"`
	// Time is when the latest occurrence happened (the event's time), or
	// the instant a timer fired (held open, silent).
	Time       time.Time `json:"time"`
	First      time.Time `json:"first"` // Time of the first occurrence folded in
	Update     bool      `json:"update,omitempty"`
	Cleared    bool      `json:"cleared,omitempty"`
	Credential string    `json:"credential,omitempty"` // for passages with a grant
	// Seq is the journal sequence number of the event whose step raised
	// it (0: a timer, or an event not journaled): the edge derives stable
	// outbox IDs from it, so a replay after a crash repeats the same IDs.
	Seq uint64 `json:"-"`
}
