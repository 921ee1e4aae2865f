package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// quantile returns the q-quantile (0 ≤ q ≤ 1) of xs by the nearest-rank
// method: with few trials p99 is the worst trial, never an interpolation
// that no trial produced. It returns NaN for an empty sample.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// median is the 0.5 quantile (the lower middle for an even count).
func median(xs []float64) float64 { return quantile(xs, 0.5) }

// p99 is the 0.99 quantile: the slow end of a latency sample.
func p99(xs []float64) float64 { return quantile(xs, 0.99) }

// ms converts durations to float milliseconds, the unit of most samples.
func ms(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// fmtMs formats milliseconds with precision that suits the magnitude.
func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	case v >= 1:
		return fmt.Sprintf("%.2f ms", v)
	default:
		return fmt.Sprintf("%.0f µs", v*1000)
	}
}

// fmtNs formats nanoseconds per operation.
func fmtNs(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f ns", v)
	}
	return fmt.Sprintf("%.1f ns", v)
}

// fmtRate formats a per-second rate with thousands separators.
func fmtRate(v float64, unit string) string {
	return thousands(int64(math.Round(v))) + " " + unit
}

// thousands writes n with comma separators (12,345).
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// fmtRatio formats a ratio such as 1.9× or 96×.
func fmtRatio(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case v >= 10:
		return fmt.Sprintf("%.0f×", v)
	default:
		return fmt.Sprintf("%.2f×", v)
	}
}
