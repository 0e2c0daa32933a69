package nstest

import (
	"os"
	"strings"
	"testing"
)

func TestLeakedNamesAFileOpenedSince(t *testing.T) {
	before, err := OpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	after, err := OpenFDs()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	leaked := Leaked(before, after)
	if len(leaked) != 1 || !strings.HasSuffix(leaked[0], "/status") {
		t.Errorf("Leaked = %q, want the one file opened since", leaked)
	}
	if again, _ := OpenFDs(); len(Leaked(before, again)) != 0 {
		t.Errorf("after closing it, Leaked = %q, want none", Leaked(before, again))
	}
}
