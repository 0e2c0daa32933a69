package inetdiag

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// destroyEvent frames an inet_diag_msg as the kernel multicasts it: a
// SOCK_DIAG_BY_FAMILY netlink message with a tcp_info-sized attribute.
func destroyEvent(local, remote netip.AddrPort) []byte {
	body := message(observe.Close, local, remote, 0, 0, 0, attr(2, make([]byte, 232)...))
	hdr := make([]byte, nlmsgHeaderLen)
	binary.NativeEndian.PutUint32(hdr[0:], uint32(nlmsgHeaderLen+len(body)))
	binary.NativeEndian.PutUint16(hdr[4:], sockDiagByFamily)
	return append(hdr, body...)
}

func TestDestroyFilterKeepsOnlyThePort(t *testing.T) {
	raw, err := DestroyFilter(8080)
	if err != nil {
		t.Fatal(err)
	}
	prog := make([]bpf.Instruction, len(raw))
	for i, ri := range raw {
		prog[i] = ri.Disassemble()
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		keep bool
	}{
		{"server side v4", destroyEvent(netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("127.0.0.1:40000")), true},
		{"server side v6", destroyEvent(netip.MustParseAddrPort("[::1]:8080"), netip.MustParseAddrPort("[::1]:40000")), true},
		{"client side", destroyEvent(netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.1:8080")), false},
		{"other port", destroyEvent(netip.MustParseAddrPort("127.0.0.1:8081"), netip.MustParseAddrPort("127.0.0.1:40000")), false},
		{"byte-swapped port", destroyEvent(netip.MustParseAddrPort("127.0.0.1:36895"), netip.AddrPort{}), false},
		{"truncated", destroyEvent(netip.MustParseAddrPort("127.0.0.1:8080"), netip.AddrPort{})[:nlmsgHeaderLen+5], false},
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := n > 0; got != tt.keep {
			t.Errorf("%s: filter keeps %d bytes; want kept %v", tt.name, n, tt.keep)
		}
	}
}

func TestParseDestroyed(t *testing.T) {
	ours := destroyEvent(netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::2]:50000"))
	client := destroyEvent(netip.MustParseAddrPort("10.0.0.2:50000"), netip.MustParseAddrPort("10.0.0.1:443"))
	got, err := ParseDestroyed([][]byte{ours[nlmsgHeaderLen:], client[nlmsgHeaderLen:]}, 443)
	if err != nil {
		t.Fatal(err)
	}
	want := []observe.Socket{{State: observe.Close, Local: netip.MustParseAddrPort("[2001:db8::1]:443"),
		Remote: netip.MustParseAddrPort("[2001:db8::2]:50000"), Activity: true}} // the event carries tcp_info
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseDestroyed([][]byte{ours[nlmsgHeaderLen : nlmsgHeaderLen+20]}, 443); err == nil {
		t.Error("parsed a truncated event without error")
	}
}
