package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// demoJSON is what the test reads of `sockdrain demo --json`.
type demoJSON struct {
	Clients    int `json:"clients"`
	DrainAlone struct {
		TimedOut    bool `json:"timed_out"`
		Established int  `json:"established"`
	} `json:"keep_alive_drain_alone"`
	Strategies []struct {
		Name    string `json:"name"`
		Gate    string `json:"gate"`
		Stops   int    `json:"stops"`
		PerStop []struct {
			Counts loadgen.Counts `json:"counts"`
			Lost   int64          `json:"lost"`
		} `json:"per_stop"`
		StopsWithLosses int   `json:"stops_with_losses"`
		Lost            int64 `json:"lost"`
	} `json:"strategies"`
}

// TestDemoDrainedStopsLoseNoClient runs `sockdrain demo` as a new user
// would, once per gate, and wants every stop of its sockdrain strategies
// to lose no client: each one's clients got a complete response or
// ECONNREFUSED, and at least one of each. Before the fix the demo opened
// the gate before stopping the server, and the stop reset what the
// reopened listener had queued (issue 16). With keep-alive clients, it
// wants the drain alone to have waited on every client's connection until
// the demo gave up, and the hand-over to the server's stop to lose no one.
func TestDemoDrainedStopsLoseNoClient(t *testing.T) {
	const wantStops = 3 // fewer than the demo's 5, so the test fits a TCG VM (make vmtest)
	nstest.RequireAdmin(t)
	for _, backend := range []string{"reuseport", "sklookup", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			gatetest.RequireKernel(t, backend)
			pins, err := bpffs.List()
			if err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runDemoCLI(t, "--json", "--backend", backend, "--warmup", "300ms", "--stops", "3")
			if code != exitOK {
				t.Fatalf("exit %d: %s%s", code, stderr, stdout)
			}
			var out demoJSON
			if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Strategies) != 3 {
				t.Fatalf("want three strategies in the JSON: %v\n%s", err, stdout)
			}
			for si, drained := range out.Strategies[1:] {
				// The hand-over's keep-alive clients wait 300ms between
				// requests. A stop may find none of them mid-request: the
				// server's stop then closes every connection idle, each
				// client's next request goes to a new one and is refused,
				// and no request completes after the stop began.
				handOver := si == 1
				if drained.Gate != backend || drained.Stops != wantStops || len(drained.PerStop) != wantStops || drained.Lost != 0 || drained.StopsWithLosses != 0 {
					t.Errorf("strategy %q: gate %q, %d stops, %d lost in %d: want %s, %d stops, none lost",
						drained.Name, drained.Gate, len(drained.PerStop), drained.Lost, drained.StopsWithLosses, backend, wantStops)
				}
				for i, s := range drained.PerStop {
					if s.Lost != 0 || s.Counts.Bad() != 0 || (s.Counts.Complete == 0 && !handOver) || s.Counts.Refused == 0 {
						t.Errorf("%s, stop %d: %+v, lost %d: want complete and refused attempts only, some of each",
							drained.Name, i+1, s.Counts, s.Lost)
					}
				}
			}
			if w := out.DrainAlone; !w.TimedOut || w.Established != out.Clients {
				t.Errorf("keep-alive drain alone: %+v, want a timeout with all %d connections open", w, out.Clients)
			}
			if after, err := bpffs.List(); err != nil || !slices.Equal(after, pins) {
				t.Errorf("pins after the demo %v (%v), want %v as before", after, err, pins)
			}
		})
	}
}

// runDemoCLI runs `sockdrain demo` in-process, as runCLI does, with room
// for the demo's 20 s.
func runDemoCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	code := run(ctx, env{args: append([]string{"sockdrain", "demo"}, args...), stdout: &stdout, stderr: &stderr})
	return code, stdout.String(), stderr.String()
}
