package loadgen_test

import (
	"errors"
	"testing"

	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

func TestLoadDoError(t *testing.T) {
	errNoThread := errors.New("no thread")
	_, err := loadgen.Run(t.Context(), loadgen.Config{
		Addr: "127.0.0.1:1", Workers: 2, Do: func(func() error) error { return errNoThread },
	})
	if !errors.Is(err, errNoThread) {
		t.Errorf("Run error %v, want %v", err, errNoThread)
	}
}

func TestLoadBadConfig(t *testing.T) {
	for _, cfg := range []loadgen.Config{
		{Addr: "localhost:80"}, {Addr: "127.0.0.1"}, {Addr: "127.0.0.1:80", Workers: -1},
	} {
		if _, err := loadgen.Start(t.Context(), cfg); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}
