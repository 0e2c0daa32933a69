package pcblist

import (
	"errors"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// tornList is what FreeBSD 15.1 returned about once in a hundred reads
// while a gate refused loopback clients: a header with count 3 and
// generation 14789, one record, and a trailer with count 2 and generation
// 14790. The listener on 8080 is among the records that went missing.
func tornList(rel release) []byte {
	b := buildXInpGen(3, 14789)
	b = append(b, buildXTCPCB(rel, drainScene()[13], 100)...) // *:22, another port
	return append(b, buildXInpGen(2, 14790)...)
}

func TestParseRefusesTornList(t *testing.T) {
	for _, rel := range releases {
		rs, err := Parse(tornList(rel))
		if !errors.Is(err, ErrTorn) || rs != nil {
			t.Errorf("%s: Parse(torn) = %d records, %v; want ErrTorn", rel.name, len(rs), err)
		}
	}
	// The same records under equal generations parse: only the
	// generations make a list torn, not its counts.
	b := tornList(releases[0])
	le.PutUint64(b[len(b)-xinpgenLen+xigGen:], 14789)
	if rs, err := Parse(b); err != nil || len(rs) != 1 {
		t.Errorf("Parse(same generations) = %d records, %v; want 1, nil", len(rs), err)
	}
}

// reads returns a read function that returns lists in turn, then the last
// one again, and counts its calls.
func reads(lists ...[]byte) (func() ([]byte, error), *int) {
	n := 0
	return func() ([]byte, error) {
		b := lists[min(n, len(lists)-1)]
		n++
		return b, nil
	}, &n
}

func noPause(t *testing.T) *[]time.Duration {
	var slept []time.Duration
	old := pause
	pause = func(d time.Duration) { slept = append(slept, d) }
	t.Cleanup(func() { pause = old })
	return &slept
}

func TestConsistentRetriesTornReads(t *testing.T) {
	noPause(t)
	rel := releases[2]
	read, n := reads(tornList(rel), tornList(rel), buildList(rel, drainScene()))
	rs, err := Consistent(read)
	if err != nil {
		t.Fatal(err)
	}
	if *n != 3 {
		t.Errorf("read %d times, want 3", *n)
	}
	ls := observe.Fold(Sockets(ByLocalPort(rs, 8080)), 0)
	if len(ls) != 1 || ls[0].Listen != ap("0.0.0.0:8080") || ls[0].AcceptQueue != 3 {
		t.Errorf("after torn reads, listeners on 8080 = %+v; want *:8080 with 3 queued", ls)
	}
}

func TestConsistentGivesUpWithoutAnEmptyList(t *testing.T) {
	slept := noPause(t)
	read, n := reads(tornList(releases[1]))
	rs, err := Consistent(read)
	if !errors.Is(err, ErrTorn) || rs != nil {
		t.Fatalf("Consistent(always torn) = %d records, %v; want nil and ErrTorn", len(rs), err)
	}
	if *n != MaxReads {
		t.Errorf("read %d times, want MaxReads (%d)", *n, MaxReads)
	}
	var total time.Duration
	for _, d := range *slept {
		total += d
	}
	if total <= 0 || total > 200*time.Millisecond {
		t.Errorf("paused %v in all between reads; want a little, bounded", total)
	}
}

func TestConsistentStopsAtOtherErrors(t *testing.T) {
	noPause(t)
	bad := buildList(releases[0], drainScene())
	bad = bad[:len(bad)-10]
	read, n := reads(bad)
	if _, err := Consistent(read); !errors.Is(err, ErrTruncated) || *n != 1 {
		t.Errorf("Consistent(truncated) = %v after %d reads; want ErrTruncated after 1", err, *n)
	}
	boom := errors.New("sysctl failed")
	if _, err := Consistent(func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Consistent(read error) = %v, want it passed on", err)
	}
}
