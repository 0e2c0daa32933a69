package gate

import (
	"errors"
	"testing"
)

func TestParseKernelVersion(t *testing.T) {
	for in, want := range map[string]KernelVersion{
		"6.12.95+deb12-cloud-amd64": {6, 12, 95},
		"6.1.0-56-cloud-amd64":      {6, 1, 0},
		"5.10":                      {5, 10, 0},
		"6.18.0":                    {6, 18, 0},
	} {
		got, err := ParseKernelVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseKernelVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "6", "x.y", "6.", "-6.1"} {
		if v, err := ParseKernelVersion(in); err == nil {
			t.Errorf("ParseKernelVersion(%q) = %v, want an error", in, v)
		}
	}
}

func TestMinimumSupports(t *testing.T) {
	m, ok := MinimumOf("sklookup")
	if !ok {
		t.Fatal("no minimum for sklookup")
	}
	if err := m.Supports(KernelVersion{5, 16, 20}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("5.16.20: err = %v, want ErrNotSupported", err)
	}
	for _, v := range []KernelVersion{{5, 17, 0}, {6, 1, 0}} {
		if err := m.Supports(v); err != nil {
			t.Errorf("%v: %v", v, err)
		}
	}
	if _, ok := MinimumOf("pf"); ok {
		t.Error("pf has a Linux minimum")
	}
}
