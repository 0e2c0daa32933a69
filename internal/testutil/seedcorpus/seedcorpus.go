// Package seedcorpus keeps a fuzz target's committed seed corpus equal to
// the seeds a test builds.
package seedcorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Check fails t unless testdata/fuzz/<target> holds exactly seeds, each in
// go test's corpus format. With update it writes them instead.
func Check(t *testing.T, target string, seeds map[string][]byte, update bool) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	for name, b := range seeds {
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if update {
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
			t.Errorf("seed %s differs from the seeds the test builds; run with -update", path)
		}
	}
}
