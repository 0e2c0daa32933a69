package nftgate

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The tail every rule ends with, as `nft --debug=netlink` prints it for
// "tcp dport 8080 tcp flags & (syn|ack) == syn reject with tcp reset":
//
//	[ meta load l4proto => reg 1 ]
//	[ cmp eq reg 1 0x00000006 ]
//	[ payload load 2b @ transport header + 2 => reg 1 ]
//	[ cmp eq reg 1 0x0000901f ]
//	[ payload load 1b @ transport header + 13 => reg 1 ]
//	[ bitwise reg 1 = ( reg 1 & 0x00000012 ) ^ 0x00000000 ]
//	[ cmp eq reg 1 0x00000002 ]
//	[ reject type 1 code 0 ]
var tail8080 = []expr.Any{
	&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
	&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
	&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x1f, 0x90}},
	&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
	&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
	&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
	&expr.Reject{Type: 1, Code: 0},
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func daddr(off uint32, b ...byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(b))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func join(parts ...[]expr.Any) []expr.Any {
	var all []expr.Any
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func TestRuleExprs(t *testing.T) {
	loop6 := make([]byte, 16)
	loop6[15] = 1
	for _, tc := range []struct {
		addr   string
		v6only bool
		want   []expr.Any
	}{
		{"127.0.0.1:8080", false, join(nfproto(unix.NFPROTO_IPV4), daddr(16, 127, 0, 0, 1), tail8080)},
		{"[::ffff:127.0.0.1]:8080", false, join(nfproto(unix.NFPROTO_IPV4), daddr(16, 127, 0, 0, 1), tail8080)},
		{"[::1]:8080", false, join(nfproto(unix.NFPROTO_IPV6), daddr(24, loop6...), tail8080)},
		{"0.0.0.0:8080", false, join(nfproto(unix.NFPROTO_IPV4), tail8080)},
		{"0.0.0.0:8080", true, join(nfproto(unix.NFPROTO_IPV4), tail8080)},
		{"[::]:8080", false, tail8080},
		{"[::]:8080", true, join(nfproto(unix.NFPROTO_IPV6), tail8080)},
		{"[::1]:8080", true, join(nfproto(unix.NFPROTO_IPV6), daddr(24, loop6...), tail8080)},
	} {
		got := matchFor(netip.MustParseAddrPort(tc.addr), tc.v6only).exprs()
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("exprs for %s (v6only %v) (-want +got):\n%s", tc.addr, tc.v6only, d)
		}
	}
}

func TestComment(t *testing.T) {
	key := "4026531840_127.0.0.1_8080"
	ud := comment(key)
	if want := append(append([]byte{0, byte(len(key) + 1)}, key...), 0); !cmp.Equal(ud, want) {
		t.Fatalf("comment(%q) = %q, want %q", key, ud, want)
	}
	if got := commentOf(ud); got != key {
		t.Errorf("commentOf(comment(%q)) = %q", key, got)
	}
	other := append([]byte{1, 2, 'x', 'y'}, ud...)
	if got := commentOf(other); got != key {
		t.Errorf("commentOf after another record = %q, want %q", got, key)
	}
	for _, bad := range [][]byte{nil, {0}, {0, 9, 'a'}, {1, 200, 0, 0}} {
		if got := commentOf(bad); got != "" {
			t.Errorf("commentOf(%q) = %q, want empty", bad, got)
		}
	}
}

// TestTiedExprs: the tied rule is the untied one with jump tied in place
// of the reject, and the tied chain is what `nft --debug=netlink` prints
// for "socket mark 0x2000 reject with tcp reset; socket mark return;
// socket transparent reject with tcp reset" (the second and third without
// a comparison, as nft can't say that).
func TestTiedExprs(t *testing.T) {
	m := matchFor(netip.MustParseAddrPort("127.0.0.1:8080"), false)
	untied, tied := m.exprs(), m.tiedExprs()
	jump := &expr.Verdict{Kind: expr.VerdictJump, Chain: "tied"}
	if d := cmp.Diff(append(untied[:len(untied)-1:len(untied)-1], jump), tied); d != "" {
		t.Errorf("tied rule (-want +got):\n%s", d)
	}
	mark := binary.NativeEndian.AppendUint32(nil, 0x2000) // the kernel's sk_mark, as is
	want := [][]expr.Any{
		{&expr.Socket{Key: expr.SocketKeyMark, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark}, &expr.Reject{Type: 1}},
		{&expr.Socket{Key: expr.SocketKeyMark, Register: 1}, &expr.Verdict{Kind: expr.VerdictReturn}},
		{&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1}, &expr.Reject{Type: 1}},
	}
	if d := cmp.Diff(want, tiedChainRules()); d != "" {
		t.Errorf("tied chain (-want +got):\n%s", d)
	}
}
