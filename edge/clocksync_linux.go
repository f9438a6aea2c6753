package edge

import "syscall"

// systemClockSync reads the kernel's NTP discipline state (adjtimex):
// whether an NTP daemon keeps the clock synchronised and its estimated
// maximum error.
func systemClockSync() (known, synced bool, maxErrorMicros int64) {
	var t syscall.Timex
	state, err := syscall.Adjtimex(&t)
	if err != nil {
		return false, false, 0
	}
	const staUnsync = 0x0040
	const timeError = 5
	return true, state != timeError && t.Status&staUnsync == 0, t.Maxerror
}
