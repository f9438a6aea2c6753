package testrig

import (
	"os"
	"strconv"
	"strings"
)

// LoadAverage is the machine's 1-minute load average (0 where
// /proc/loadavg cannot be read): tests whose figures depend on getting the
// CPU when they need it say when the box was starved.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
