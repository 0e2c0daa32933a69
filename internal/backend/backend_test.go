package backend

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

type warnGate struct {
	gate.Gate
	w   []string
	err error
}

func (g warnGate) Warnings() ([]string, error) { return g.w, g.err }

func TestWarningsSaysEachOnce(t *testing.T) {
	b := Backend{Name: "fake", Warn: func(_ *os.File, sc string) []string { return []string{"ns " + sc} }}
	gs := []gate.Gate{warnGate{w: []string{"untied"}}, warnGate{w: []string{"untied"}}, warnGate{err: errors.New("boom")}, nil}
	got := Warnings(b, nil, "2", gs)
	want := []string{"ns 2", "untied", "could not check the fake gate for warnings: boom"}
	if !slices.Equal(got, want) {
		t.Errorf("Warnings = %q, want %q", got, want)
	}
}
