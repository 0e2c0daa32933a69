package pcblist

import (
	"flag"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/seedcorpus"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzParse from the fixture builder")

// seeds are the fuzz corpus: every fixture list, and a few refusals.
func seeds() map[string][]byte {
	s := map[string][]byte{}
	for _, rel := range releases {
		s["scene-"+rel.name] = buildList(rel, drainScene())
		s["empty-"+rel.name] = buildList(rel, nil)
	}
	short := buildList(releases[0], drainScene()[:2])
	s["truncated"] = short[:len(short)-10]
	le.PutUint64(short, 32)
	s["xinpgen-11x"] = short
	s["torn"] = tornList(releases[2])
	return s
}

func FuzzParse(f *testing.F) {
	for _, b := range seeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := Parse(b)
		if err != nil {
			return
		}
		if min := 2*xinpgenLen + len(rs)*xtcpcbLen; len(b) < min {
			t.Fatalf("parsed %d records from %d bytes, need at least %d", len(rs), len(b), min)
		}
		for _, s := range Sockets(rs) {
			if s.State.String() == "UNKNOWN" {
				t.Fatalf("socket %+v has no known state", s)
			}
		}
	})
}

// TestSeedCorpus checks that the committed corpus is what the fixture
// builder makes now; go test -run TestSeedCorpus -update rewrites it.
func TestSeedCorpus(t *testing.T) {
	seedcorpus.Check(t, "FuzzParse", seeds(), *update)
}
