package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Result is what a load saw.
type Result struct {
	Counts Counts `json:"counts"`
	// Total is the number of attempts, Counts.Total().
	Total int64 `json:"total"`
	// Duration is from Start until the last worker ended.
	Duration time.Duration `json:"duration_ns"`
	// Mark is when Load.Mark was last called, from Start; 0 if never.
	Mark time.Duration `json:"mark_ns"`
	// SinceMark counts the attempts that ended at or after Mark: those in
	// flight at the mark or started after it, the ones a stop made at the
	// mark can touch. Without a Mark it equals Counts.
	SinceMark Counts `json:"since_mark"`
	// TimeToRefuse is from Mark until the first refused attempt that
	// ended at or after it; negative if none did.
	TimeToRefuse time.Duration `json:"time_to_refuse_ns"`
	// Samples describe the first few attempts that broke the promise
	// (every outcome but Complete and Refused) and ended at or after Mark.
	Samples []Sample `json:"samples,omitempty"`
}

// Sample describes one bad attempt.
type Sample struct {
	Outcome Outcome `json:"outcome"`
	// At is when the attempt started, from Start; Took how long it ran.
	At   time.Duration `json:"at_ns"`
	Took time.Duration `json:"took_ns"`
	// Peer is the address dialed; Local the client's end, if it connected.
	Peer  string `json:"peer"`
	Local string `json:"local,omitempty"`
	// Error is the error that ended the attempt.
	Error string `json:"error"`
	// Bytes is how many response bytes arrived before it.
	Bytes int64 `json:"bytes"`

	start time.Time
}

func (s Sample) String() string {
	return fmt.Sprintf("%s at %v, after %v: %s -> %s after %d bytes: %s",
		s.Outcome, s.At.Round(time.Microsecond), s.Took.Round(time.Microsecond), s.Local, s.Peer, s.Bytes, s.Error)
}

// PerSecond is the rate of attempts over the run.
func (r Result) PerSecond() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Total) / r.Duration.Seconds()
}

func (l *Load) result() Result {
	c := l.Counts()
	r := Result{
		Counts:       c,
		Total:        c.Total(),
		Duration:     l.end.Sub(l.start),
		Mark:         time.Duration(l.mark.Load()),
		SinceMark:    load(&l.sinceMark),
		TimeToRefuse: -1,
		Samples:      append([]Sample(nil), l.samples...),
	}
	if at := l.firstRefused.Load(); at >= 0 {
		r.TimeToRefuse = time.Duration(at) - r.Mark
	}
	return r
}

// Row is one line of an outcome table.
type Row struct {
	Label  string
	Result Result
}

// WriteTable writes rows as an aligned table for people: one column per
// outcome, then the total and the attempt rate.
func WriteTable(w io.Writer, rows ...Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcomplete\trefused\treset-before\treset-mid\ttimeout\tpartial\tother\ttotal\tconn/s\t")
	for _, row := range rows {
		c := row.Result.Counts
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", row.Label,
			c.Complete, c.Refused, c.ResetBeforeResponse, c.ResetMidResponse,
			c.Timeout, c.Partial, c.Other, row.Result.Total, row.Result.PerSecond())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write outcome table: %w", err)
	}
	return nil
}
