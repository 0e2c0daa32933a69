package loadgen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestWriteTable(t *testing.T) {
	r := Result{
		Counts:   Counts{Complete: 900, Refused: 95, ResetBeforeResponse: 3, ResetMidResponse: 1, Partial: 1},
		Total:    1000,
		Duration: 2 * time.Second,
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, Row{"reuseport", r}, Row{"close", Result{}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), buf.String())
	}
	want := []string{"reuseport", "900", "95", "3", "1", "0", "1", "0", "1000", "500"}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("row %q, want %q", got, want)
	}
	if head := strings.Fields(lines[0]); len(head) != len(want)-1 {
		t.Errorf("header %q has %d columns, want %d", head, len(head), len(want)-1)
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{TimeToRefuse: time.Millisecond, Samples: []Sample{{Outcome: Partial, Bytes: 3}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"time_to_refuse_ns":1000000`, `"outcome":"partial"`, `"bytes":3`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("json %s lacks %s", b, want)
		}
	}
}

func TestPacerSpacesSlots(t *testing.T) {
	ms := int64(time.Millisecond)
	p := newPacer(1000)
	for i, tc := range []struct {
		now  int64
		want time.Duration
	}{
		{0, 0}, {0, time.Millisecond}, {0, 2 * time.Millisecond},
		{ms / 2, 5 * time.Millisecond / 2},
		// A late caller gets a slot at once, and the schedule restarts
		// from it rather than bursting to catch up.
		{10 * ms, 0}, {10 * ms, time.Millisecond}, {11 * ms, time.Millisecond},
	} {
		if got := p.take(tc.now); got != tc.want {
			t.Errorf("take %d at %v: wait %v, want %v", i, time.Duration(tc.now), got, tc.want)
		}
	}
	if newPacer(0) != nil {
		t.Error("rate 0 made a pacer")
	}
}
