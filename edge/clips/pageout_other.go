//go:build !linux

package clips

func pageOut(string) error { return nil }

func residentFileBytes() int64 { return 0 }
