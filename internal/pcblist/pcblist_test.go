package pcblist

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

func TestParseDrainScene(t *testing.T) {
	for _, rel := range releases {
		t.Run(rel.name, func(t *testing.T) {
			rs, err := Parse(buildList(rel, drainScene()))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != len(drainScene()) {
				t.Fatalf("got %d records, want %d", len(rs), len(drainScene()))
			}
			ls := observe.Fold(Sockets(ByLocalPort(rs, 8080)), 0)
			want := []observe.Listener{{
				Listen: ap("0.0.0.0:8080"), Sockets: 1, PIDs: []int{},
				AcceptQueue: 3, Backlog: 128, SynRecv: 3,
				Established: 2, CloseWait: 1, Closing: 2, UnackedBytes: 1050,
				Inodes: []uint64{0xfffff80001000000},
			}}
			if diff := cmp.Diff(want, ls, addrPorts); diff != "" {
				t.Errorf("folded listeners (-want +got):\n%s", diff)
			}
		})
	}
}

// addrPorts compares netip.AddrPort by value.
var addrPorts = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func TestParseRecordFields(t *testing.T) {
	rs, err := Parse(buildList(releases[1], drainScene()))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{State: Listen, Local: ap("0.0.0.0:8080"), Remote: ap("0.0.0.0:0"), KSocket: 0xfffff80001000000, QLen: 3, IncQLen: 1, QLimit: 128},
		{State: SynReceived, Local: ap("10.0.0.1:8080"), Remote: ap("10.0.0.8:50001"), SoState: ssConnecting},
		{State: Established, Local: ap("10.0.0.1:8080"), Remote: ap("10.0.0.7:41001"), KSocket: 0xfffff80001000600, SoState: 2, RecvCC: 12, SendCC: 900},
		{State: TimeWait, Local: ap("10.0.0.1:8080"), Remote: ap("10.0.0.7:41005")},
	}
	got := []Record{rs[0], rs[5], rs[8], rs[12]}
	if diff := cmp.Diff(want, got, addrPorts); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestSocketsQueues(t *testing.T) {
	rs, err := Parse(buildList(releases[0], drainScene()))
	if err != nil {
		t.Fatal(err)
	}
	ss := Sockets(rs)
	for i, tc := range []struct {
		i     int
		state observe.State
		inode uint64
		recvQ uint32
		sendQ uint32
	}{
		{0, observe.Listen, 0xfffff80001000000, 3, 128}, // so_qlen, so_qlimit
		{1, observe.Established, 0, 0, 0},               // on the complete queue
		{4, observe.SynRecv, 0, 0, 0},                   // on the incomplete queue
		{5, observe.SynRecv, 0, 0, 0},                   // syncache
		{8, observe.Established, 0xfffff80001000600, 12, 900},
	} {
		s := ss[tc.i]
		if s.State != tc.state || s.Inode != tc.inode || s.RecvQ != tc.recvQ || s.SendQ != tc.sendQ {
			t.Errorf("case %d: socket %d = %+v, want state %v inode %#x recvq %d sendq %d", i, tc.i, s, tc.state, tc.inode, tc.recvQ, tc.sendQ)
		}
	}
}

func TestSocketsDualStack(t *testing.T) {
	const k = 0xfffff80002000000
	fs := []fixture{
		{state: Listen, local: ap("[::]:443"), remote: ap("[::]:0"), dualStack: true, ksock: k, qlimit: 511},
		{state: Established, local: ap("127.0.0.1:443"), remote: ap("127.0.0.1:50000"), ksock: k + 1},
		{state: Established, local: ap("[::1]:443"), remote: ap("[::1]:50001"), ksock: k + 2},
		{state: Listen, local: ap("[::]:80"), remote: ap("[::]:0"), v6only: true, ksock: k + 3},
		{state: Listen, local: ap("0.0.0.0:80"), remote: ap("0.0.0.0:0"), ksock: k + 4},
		{state: Established, local: ap("127.0.0.1:80"), remote: ap("127.0.0.1:50002"), ksock: k + 5},
	}
	rs, err := Parse(buildList(releases[2], fs))
	if err != nil {
		t.Fatal(err)
	}
	ls := observe.Fold(Sockets(rs), 0)
	got := map[netip.AddrPort]int{}
	for _, l := range ls {
		got[l.Listen] = l.Established
	}
	want := map[netip.AddrPort]int{ap("[::]:443"): 2, ap("[::]:80"): 0, ap("0.0.0.0:80"): 1}
	if diff := cmp.Diff(want, got, addrPorts); diff != "" {
		t.Errorf("established per listener (-want +got):\n%s", diff)
	}
	if !rs[3].V6Only || rs[0].V6Only {
		t.Errorf("V6Only: [::]:443 %v, [::]:80 %v; want false, true", rs[0].V6Only, rs[3].V6Only)
	}
}

func TestParseEmptyList(t *testing.T) {
	rs, err := Parse(buildList(releases[0], nil))
	if err != nil || len(rs) != 0 {
		t.Fatalf("Parse(empty list) = %v, %v; want no records", rs, err)
	}
}

func TestParseUnknownLayout(t *testing.T) {
	good := buildList(releases[0], drainScene())
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		says   string
	}{
		{"11.x xinpgen", func(b []byte) []byte { le.PutUint64(b, 32); return b }, "length 32"},
		{"grown xtcpcb", func(b []byte) []byte { return resizeFirst(b, xtcpcbLen+16) }, "length 760"},
		{"xinpcb length", func(b []byte) []byte { le.PutUint64(b[xinpgenLen+offXiLen:], 392); return b }, "xinpcb length 392"},
		{"xsocket length", func(b []byte) []byte { le.PutUint64(b[xinpgenLen+offXsoLen:], 232); return b }, "xsocket length 232"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.mutate(clone(good)))
			if !errors.Is(err, ErrUnknownLayout) {
				t.Fatalf("Parse = %v, want ErrUnknownLayout", err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

func TestParseUnknownLayoutNamesKnownSizes(t *testing.T) {
	b := buildList(releases[0], nil)
	le.PutUint64(b, 24)
	_, err := Parse(b)
	if !errors.Is(err, ErrUnknownLayout) || !strings.Contains(err.Error(), fmt.Sprint("xtcpcb ", xtcpcbLen)) {
		t.Fatalf("Parse = %v, want ErrUnknownLayout naming xtcpcb %d", err, xtcpcbLen)
	}
}

// resizeFirst changes the declared and actual length of the first record.
func resizeFirst(b []byte, n int) []byte {
	out := append(clone(b[:xinpgenLen]), make([]byte, n)...)
	copy(out[xinpgenLen:], b[xinpgenLen:xinpgenLen+xtcpcbLen])
	le.PutUint64(out[xinpgenLen:], uint64(n))
	return append(out, b[xinpgenLen+xtcpcbLen:]...)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func TestParseTruncated(t *testing.T) {
	b := buildList(releases[2], drainScene()[:3])
	for n := range len(b) {
		if _, err := Parse(b[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("Parse(first %d of %d bytes) = %v, want ErrTruncated", n, len(b), err)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func([]byte)
	}{
		{"state 11", func(b []byte) { le.PutUint32(b[xinpgenLen+offTCPState:], 11) }},
		{"negative state", func(b []byte) { le.PutUint32(b[xinpgenLen+offTCPState:], 0xffffffff) }},
		{"no family", func(b []byte) { b[xinpgenLen+offInpVFlag] = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := buildList(releases[0], drainScene())
			tc.mutate(b)
			if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestByLocalPort(t *testing.T) {
	rs, err := Parse(buildList(releases[0], drainScene()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ByLocalPort(rs, 8080)); n != len(rs)-1 {
		t.Errorf("ByLocalPort(8080) kept %d of %d, want all but the port-22 socket", n, len(rs))
	}
	if got := ByLocalPort(rs, 22); len(got) != 1 || got[0].Remote != ap("10.0.0.7:41006") {
		t.Errorf("ByLocalPort(22) = %+v, want the one port-22 socket", got)
	}
}
