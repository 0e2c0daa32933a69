package supervisor

import (
	"errors"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/control"
)

func TestRequestTarget(t *testing.T) {
	one := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("[::1]:80")}
	two := append(one, netip.MustParseAddrPort("127.0.0.1:443"))
	for _, tc := range []struct {
		req   control.Request
		addrs []netip.AddrPort
		want  string // "" for bad input
	}{
		{control.Request{}, one, "*:80"},
		{control.Request{}, two, ""},
		{control.Request{Port: "443"}, two, "*:443"},
		{control.Request{Listen: "127.0.0.1:443"}, two, "127.0.0.1:443"},
		{control.Request{Listen: "127.0.0.1:443", Port: "443"}, two, ""},
		{control.Request{Port: "x"}, two, ""},
	} {
		got, err := requestTarget(tc.req, tc.addrs)
		if tc.want == "" {
			if !errors.Is(err, sockdrain.ErrInvalid) {
				t.Errorf("requestTarget(%+v) = %v, %v; want bad input", tc.req, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("requestTarget(%+v) = %v, %v; want %s", tc.req, got, err, tc.want)
		}
	}
}

func TestChildStatus(t *testing.T) {
	for script, want := range map[string]int{"exit 0": 0, "exit 3": 3, "kill -TERM $$": 143, "kill -KILL $$": 137} {
		err := childStatus("sh", exec.Command("sh", "-c", script).Run())
		got := 0
		if ce, ok := errors.AsType[ChildError](err); ok {
			got = ce.Code
		} else if err != nil {
			t.Errorf("sh -c %q: %v, want a ChildError", script, err)
		}
		if got != want {
			t.Errorf("sh -c %q: code %d (%v), want %d", script, got, err, want)
		}
	}
}
