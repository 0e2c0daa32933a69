package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

func TestWithKernelChecksTheTableFirst(t *testing.T) {
	v, err := gate.RunningKernel()
	if err != nil {
		t.Fatal(err)
	}
	own := errors.New("the gate's own probe ran")
	probe := func() error { return own }
	if err := withKernel("nosuchgate", probe)(); err == nil || errors.Is(err, own) {
		t.Errorf("unknown gate: %v, want an error before the gate's probe", err)
	}
	for _, m := range gate.Minimums {
		err := withKernel(m.Gate, probe)()
		if below := v.Less(m.Version); below != errors.Is(err, gate.ErrNotSupported) || below == errors.Is(err, own) {
			t.Errorf("%s on %s (minimum %s): %v", m.Gate, v, m.Version, err)
		}
	}
}

func TestAutoOrderPutsCookieBlindGatesLast(t *testing.T) {
	names := func(bs []Backend) (s []string) {
		for _, b := range bs {
			s = append(s, b.Name)
		}
		return s
	}
	if got, want := names(AutoOrder("1")), Names(); !slices.Equal(got, want) {
		t.Errorf("tcp_syncookies=1: %v, want %v", got, want)
	}
	want := []string{gate.Reuseport, gate.NFTables, gate.SKLookup}
	if got := names(AutoOrder("2")); !slices.Equal(got, want) {
		t.Errorf("tcp_syncookies=2: %v, want %v", got, want)
	}
}

// TestREADMEKernelTableMatchesTheRecords fails when the README's table of
// minimum kernels and the records (with gate.Minimums) disagree.
func TestREADMEKernelTableMatchesTheRecords(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no README.md beside the test binary (as in make vmtest's VMs)")
	}
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| (\\d+\\.\\d+) \\|")
	var got []string
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		got = append(got, m[1]+" "+m[2])
	}
	var want []string
	for _, b := range All {
		m, ok := gate.MinimumOf(b.Name)
		if !ok {
			t.Fatalf("no minimum kernel for %s in gate.Minimums", b.Name)
		}
		want = append(want, fmt.Sprintf("%s %d.%d", b.Name, m.Version.Major, m.Version.Minor))
	}
	if !slices.Equal(got, want) {
		t.Errorf("README's minimum kernels: %q, the records': %q", got, want)
	}
}
