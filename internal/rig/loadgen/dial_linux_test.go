package loadgen_test

import (
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestDialIn runs loads whose sockets DialIn makes in the test netns; the
// workers themselves stay outside it, so only DialIn can reach the server.
func TestDialIn(t *testing.T) {
	ns := nstest.New(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		srv, err := demoserver.Start(demoserver.Config{Addr: addr, Do: ns.Do})
		if err != nil {
			t.Fatal(err)
		}
		res, err := loadgen.Run(t.Context(), loadgen.Config{
			Addr: srv.Addr().String(), Workers: 4, MaxAttempts: 200, CheckBody: true, Dial: loadgen.DialIn(ns),
		})
		srv.Stop()
		if err != nil || res.Counts != (loadgen.Counts{Complete: 200}) {
			t.Errorf("%s: %+v %v, want 200 complete", addr, res, err)
		}
	}
	cases := []struct {
		addr string
		want loadgen.Counts
	}{
		{"127.0.0.1:1", loadgen.Counts{Refused: 20}},
		{"[::1]:1", loadgen.Counts{Refused: 20}},
		{fullListener(t, ns), loadgen.Counts{Timeout: 20}},
	}
	for _, tc := range cases {
		res, err := loadgen.Run(t.Context(), loadgen.Config{
			Addr: tc.addr, Workers: 4, MaxAttempts: 20, AttemptTimeout: 50 * time.Millisecond, Dial: loadgen.DialIn(ns),
		})
		if err != nil || res.Counts != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.addr, res.Counts, err, tc.want)
		}
	}
}
