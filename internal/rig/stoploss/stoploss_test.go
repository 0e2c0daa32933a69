package stoploss

import (
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

func TestTally(t *testing.T) {
	var tl Tally
	tl.Add(loadgen.Counts{Complete: 10, Refused: 5})
	tl.Add(loadgen.Counts{Complete: 7, ResetBeforeResponse: 3, Timeout: 1})
	tl.Add(loadgen.Counts{Refused: 2, Partial: 1})
	want := Tally{Stops: 3, StopsWithLosses: 2, Counts: loadgen.Counts{Complete: 17, Refused: 7,
		ResetBeforeResponse: 3, Timeout: 1, Partial: 1}}
	if tl != want || tl.Lost() != 5 {
		t.Errorf("tally %+v (lost %d), want %+v (lost 5)", tl, tl.Lost(), want)
	}
}

// TestMeasureCountsFromTheStop loads a server on loopback, stops it, and
// wants only the attempts from the stop on in SinceMark: the warm-up's
// complete attempts stay out, and the stopped port's refusals are in.
func TestMeasureCountsFromTheStop(t *testing.T) {
	srv, err := demoserver.Start(demoserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	load, err := loadgen.Start(t.Context(), loadgen.Config{Addr: srv.Addr().String(), Workers: 4, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	before := load.Counts().Total()
	res, err := Measure(load, srv.Stop, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if before == 0 || res.Mark < 100*time.Millisecond || res.SinceMark.Refused == 0 ||
		res.SinceMark.Total() > res.Total-before {
		t.Errorf("%d attempts before the stop; result %+v: want a mark after the warm-up, "+
			"refusals after it, and none of the warm-up's attempts", before, res)
	}
}
