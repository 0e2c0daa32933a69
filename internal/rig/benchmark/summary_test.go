package benchmark

import (
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{5, 1, 4, 2, 3})
	want := Summary{N: 5, Median: 3, Min: 1, Max: 5, Q1: 2, Q3: 4, P90: 4.6, Sum: 15}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
	if even := Summarize([]float64{1, 2, 3, 4}); even.Median != 2.5 {
		t.Fatalf("median of 1..4 = %v, want 2.5", even.Median)
	}
	if empty := Summarize(nil); empty.N != 0 || empty.Format(Count) != "–" {
		t.Fatalf("empty summary = %+v %q", empty, empty.Format(Count))
	}
}

func TestFormat(t *testing.T) {
	s := SummarizeDurations([]time.Duration{300 * time.Microsecond, 2 * time.Millisecond, 1500 * time.Millisecond})
	if got, want := s.Format(Seconds), "2.00 ms [300 µs–1.50 s] (N=3)"; got != want {
		t.Fatalf("Format = %q, want %q", got, want)
	}
}

func TestTableEscapesPipes(t *testing.T) {
	tb := &Table{Title: "T", Notes: []string{"note"}, Header: []string{"a", "b"}}
	tb.AddRow("x|y", "1")
	var b strings.Builder
	if err := tb.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	want := "## T\n\nnote\n\n| a | b |\n| --- | --- |\n| x\\|y | 1 |\n\n"
	if b.String() != want {
		t.Fatalf("markdown:\n%s\nwant:\n%s", b.String(), want)
	}
}
