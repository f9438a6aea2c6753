package main

import (
	"math"
	"time"
)

// histogram counts latencies in log-spaced buckets from 0.1 ms to ~100 s
// (about 2 % apart), so percentiles need no stored samples.
type histogram struct {
	counts [1024]uint64
	n      uint64
	max    time.Duration
}

const (
	histMin    = 100 * time.Microsecond
	histFactor = 1.02
)

func bucketOf(d time.Duration) int {
	if d <= histMin {
		return 0
	}
	b := int(math.Log(float64(d)/float64(histMin)) / math.Log(histFactor))
	return min(b, 1023)
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the upper edge of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			return min(time.Duration(float64(histMin)*math.Pow(histFactor, float64(i+1))), h.max)
		}
	}
	return h.max
}
