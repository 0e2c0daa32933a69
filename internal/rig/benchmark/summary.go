// Package benchmark holds what `make bench` needs beyond the load generator:
// summaries of repeated measurements (median and spread), the machine a run
// happened on, and Markdown tables to report them in.
package benchmark

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary describes repeated measurements of one figure: its median, its
// spread (minimum, maximum, the quartiles and the 90th percentile) and how
// many there were.
type Summary struct {
	N        int
	Median   float64
	Min, Max float64
	Q1, Q3   float64
	P90      float64
	Sum      float64
}

// Summarize summarizes xs. The quantiles interpolate linearly between
// ranks, as most spreadsheets do. An empty xs gives N == 0.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Summary{N: len(s), Median: quantile(s, 0.5), Min: s[0], Max: s[len(s)-1],
		Q1: quantile(s, 0.25), Q3: quantile(s, 0.75), P90: quantile(s, 0.9), Sum: sum}
}

// SummarizeDurations summarizes ds in seconds.
func SummarizeDurations(ds []time.Duration) Summary {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = d.Seconds()
	}
	return Summarize(xs)
}

// quantile of sorted s, interpolating between ranks.
func quantile(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// Format writes the summary as "median [min–max] (N=n)", each number
// written by unit.
func (s Summary) Format(unit func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s [%s–%s] (N=%d)", unit(s.Median), unit(s.Min), unit(s.Max), s.N)
}

// FormatIQR writes the summary as "median (IQR q1–q3, N=n)".
func (s Summary) FormatIQR(unit func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (IQR %s–%s, N=%d)", unit(s.Median), unit(s.Q1), unit(s.Q3), s.N)
}

// Count writes a count with no decimals.
func Count(x float64) string { return fmt.Sprintf("%.0f", x) }

// Ratio writes a ratio with three decimals.
func Ratio(x float64) string { return fmt.Sprintf("%.3f", x) }

// Seconds writes a duration given in seconds with a unit that fits it:
// µs below a millisecond, ms below a second, else s.
func Seconds(x float64) string {
	switch a := math.Abs(x); {
	case a < 1e-3:
		return fmt.Sprintf("%.0f µs", x*1e6)
	case a < 1:
		return fmt.Sprintf("%.2f ms", x*1e3)
	}
	return fmt.Sprintf("%.2f s", x)
}

// Nanoseconds writes a figure given in nanoseconds.
func Nanoseconds(x float64) string { return fmt.Sprintf("%.0f ns", x) }

// Percent writes a fraction as a percentage with three decimals.
func Percent(x float64) string { return fmt.Sprintf("%.3f%%", x*100) }
