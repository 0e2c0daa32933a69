package gate

import (
	"net/netip"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	for _, a := range []string{"127.0.0.1:8080", "0.0.0.0:1", "[::]:443", "[2001:db8::1]:65535"} {
		l := Listener{NetNSInode: 4026531840, Addr: netip.MustParseAddrPort(a)}
		ino, addr, err := ParseKey(l.Key())
		if err != nil || ino != l.NetNSInode || addr != l.Addr {
			t.Errorf("ParseKey(%q) = %d, %v, %v; want %d, %v", l.Key(), ino, addr, err, l.NetNSInode, l.Addr)
		}
	}
	for _, bad := range []string{"", "1_7f000001", "x_7f000001_80", "1_7f0000_80", "1_zz_80", "1_7f000001_70000"} {
		if _, _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}
