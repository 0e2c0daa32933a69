package pcblist

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
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
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	for name, b := range seeds() {
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read seed (run with -update to write it): %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("seed %s differs from the fixture builder; run with -update", path)
		}
	}
}
