package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

func TestDemoSummarySaysWhatEachWayLost(t *testing.T) {
	plain, drained := newDemoStrategy(plainStop), newDemoStrategy(drainThenStop)
	for _, c := range []loadgen.Counts{{Complete: 60, Refused: 900, ResetBeforeResponse: 40}, {Complete: 64, Refused: 800},
		{Complete: 50, ResetBeforeResponse: 52, Timeout: 1}} {
		plain.add(demoStop{Counts: c, Lost: c.Bad()})
	}
	for range 3 {
		drained.add(demoStop{Counts: loadgen.Counts{Complete: 700, Refused: 2000}, Gate: "sklookup"})
	}
	got := demoSummary([]demoStrategy{plain, drained})
	want := "plain stop: 2 of 3 stops lost 93 clients; sockdrain, then stop: 0 of 3 stops lost a client"
	if got != want || drained.Gate != "sklookup" || plain.Lost != 93 {
		t.Errorf("summary %q, want %q (gate %q, lost %d)", got, want, drained.Gate, plain.Lost)
	}
	var b bytes.Buffer
	o := &demoOutput{w: &b}
	if err := o.result(demoResult{Strategies: []demoStrategy{plain, drained}, Summary: got}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"plain stop      3            2       174     1700    93  92 reset before the response, 1 timed out",
		"sockdrain, then stop      3            0      2100     6000     0\n",
		"every client got a complete response or ECONNREFUSED",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, b.String())
		}
	}
}
