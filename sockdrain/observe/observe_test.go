package observe

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestFoldAttributesConnectionsToTheirListener(t *testing.T) {
	sockets := []Socket{
		{State: Listen, Local: ap("127.0.0.1:80"), RecvQ: 3, SendQ: 128, Inode: 11},
		{State: Listen, Local: ap("0.0.0.0:80"), RecvQ: 1, SendQ: 64, Inode: 12},
		{State: Listen, Local: ap("0.0.0.0:80"), RecvQ: 2, SendQ: 64, Inode: 13}, // reuseport sibling
		{State: Listen, Local: ap("[::]:80"), SendQ: 32, Inode: 14, V6Only: true},
		// queued children (inode 0) are counted by the listener's RecvQ only
		{State: Established, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:5000")},
		{State: Established, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:5001"), Inode: 21},
		{State: CloseWait, Local: ap("10.0.0.1:80"), Remote: ap("10.0.0.2:5000"), Inode: 22},
		{State: CloseWait, Local: ap("10.0.0.1:80"), Remote: ap("10.0.0.2:5001")},
		{State: SynRecv, Local: ap("10.0.0.1:80"), Remote: ap("10.0.0.2:5002")},
		{State: NewSynRecv, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:5003")},
		{State: FinWait1, Local: ap("[::1]:80"), Remote: ap("[::1]:5000"), SendQ: 700},
		{State: LastAck, Local: ap("[::1]:80"), Remote: ap("[::1]:5001"), SendQ: 1},
		{State: FinWait2, Local: ap("[::1]:80"), Remote: ap("[::1]:5002")},
		{State: Established, Local: ap("192.0.2.1:80"), Remote: ap("192.0.2.2:1"), Inode: 23},
	}
	ls := Fold(sockets, 0)
	want := []Listener{
		{Listen: ap("0.0.0.0:80"), Sockets: 2, AcceptQueue: 3, Backlog: 128, SynRecv: 1, Established: 1, CloseWait: 1},
		{Listen: ap("127.0.0.1:80"), Sockets: 1, AcceptQueue: 3, Backlog: 128, SynRecv: 1, Established: 1},
		{Listen: ap("[::]:80"), Sockets: 1, Backlog: 32, Closing: 2, UnackedBytes: 701},
	}
	if len(ls) != len(want) {
		t.Fatalf("got %d listeners, want %d: %+v", len(ls), len(want), ls)
	}
	for i, w := range want {
		g := ls[i]
		g.PIDs, g.Inodes, g.V6Only = nil, nil, false
		if g.Listen != w.Listen || g.Sockets != w.Sockets || g.AcceptQueue != w.AcceptQueue ||
			g.Backlog != w.Backlog || g.SynRecv != w.SynRecv || g.Established != w.Established ||
			g.CloseWait != w.CloseWait || g.Closing != w.Closing || g.UnackedBytes != w.UnackedBytes {
			t.Errorf("listener %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if got := ls[0].Inodes; len(got) != 2 || got[0] != 12 || got[1] != 13 {
		t.Errorf("wildcard listener inodes = %v, want [12 13]", got)
	}
}

func TestServing(t *testing.T) {
	v4any := Listener{Listen: ap("0.0.0.0:80")}
	v4lo := Listener{Listen: ap("127.0.0.1:80")}
	v6any := Listener{Listen: ap("[::]:80")}
	v6only := Listener{Listen: ap("[::]:80"), V6Only: true}
	tests := []struct {
		name string
		ls   []Listener
		addr string
		want []netip.AddrPort
	}{
		{"exact beats wildcard", []Listener{v4any, v4lo}, "127.0.0.1", []netip.AddrPort{v4lo.Listen}},
		{"wildcard of family", []Listener{v4any, v4lo, v6any}, "127.0.0.2", []netip.AddrPort{v4any.Listen}},
		{"dual-stack takes v4", []Listener{v6any}, "127.0.0.1", []netip.AddrPort{v6any.Listen}},
		{"v6only does not take v4", []Listener{v6only}, "127.0.0.1", nil},
		{"v6 address", []Listener{v4any, v6only}, "::1", []netip.AddrPort{v6only.Listen}},
		{"mapped address is v4", []Listener{v4lo}, "::ffff:127.0.0.1", []netip.AddrPort{v4lo.Listen}},
		{"unspecified means that listener", []Listener{v4any, v4lo}, "0.0.0.0", []netip.AddrPort{v4any.Listen}},
		{"no listener", []Listener{v4lo}, "127.0.0.2", nil},
		{"any address", []Listener{v4lo, v6any}, "", []netip.AddrPort{v4lo.Listen, v6any.Listen}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			got := Serving(tt.ls, addr)
			if len(got) != len(tt.want) {
				t.Fatalf("Serving(%s) = %v, want %v", tt.addr, got, tt.want)
			}
			for i := range got {
				if got[i].Listen != tt.want[i] {
					t.Errorf("Serving(%s)[%d] = %v, want %v", tt.addr, i, got[i].Listen, tt.want[i])
				}
			}
		})
	}
}

func TestPendingMatchesWhatFoldCounts(t *testing.T) {
	sockets := []Socket{
		{State: Listen, Local: ap("127.0.0.1:80"), RecvQ: 1},
		{State: Established, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:1")},           // queued
		{State: Established, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:2"), Inode: 9}, // accepted
		{State: SynRecv, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:3")},
		{State: LastAck, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:4"), SendQ: 10},
		{State: FinWait1, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:5")}, // its FIN unacked
		{State: FinWait2, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:7")}, // FIN acknowledged
		{State: Established, Local: ap("127.0.0.2:80"), Remote: ap("127.0.0.1:6"), Inode: 3},
	}
	got := Pending(sockets, Fold(sockets, 0))
	var peers []string
	for _, s := range got {
		peers = append(peers, s.Remote.String())
	}
	want := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4", "127.0.0.1:5"}
	if !slices.Equal(peers, want) {
		t.Errorf("pending peers %v, want %v", peers, want)
	}
}

func TestIdleFor(t *testing.T) {
	rest := Socket{State: Established, Inode: 1, Activity: true, SinceRecv: 2 * time.Second, SinceSent: 2 * time.Second}
	for _, tt := range []struct {
		name string
		edit func(*Socket)
		want bool
	}{
		{"at rest, the server spoke last", func(*Socket) {}, true},
		{"request being worked on: the client spoke last", func(s *Socket) { s.SinceSent = 5 * time.Second }, false},
		{"quiet for less than the threshold", func(s *Socket) { s.SinceRecv, s.SinceSent = 500*time.Millisecond, 0 }, false},
		{"unread request", func(s *Socket) { s.RecvQ = 10 }, false},
		{"response not yet acknowledged", func(s *Socket) { s.SendQ = 10 }, false},
		{"not yet accepted", func(s *Socket) { s.Inode = 0 }, false},
		{"activity unknown", func(s *Socket) { s.Activity = false }, false},
		{"closing", func(s *Socket) { s.State = FinWait1 }, false},
	} {
		s := rest
		tt.edit(&s)
		if got := s.IdleFor(time.Second); got != tt.want {
			t.Errorf("%s: IdleFor = %v, want %v", tt.name, got, tt.want)
		}
	}
	if rest.IdleFor(0) {
		t.Error("IdleFor(0) counted a connection: zero must count none")
	}
}

// Follow keeps a closed listener's address, with what it left behind, and
// leaves other listeners out.
func TestFollowKeepsClosedListeners(t *testing.T) {
	sockets := []Socket{
		{State: Listen, Local: ap("127.0.0.2:80"), Inode: 4}, // another server, not followed
		{State: FinWait1, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:1"), SendQ: 100},
		{State: Established, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:2"), Inode: 5,
			Activity: true, SinceRecv: 2 * time.Second},
		{State: Established, Local: ap("127.0.0.2:80"), Remote: ap("127.0.0.1:3"), Inode: 6},
	}
	ls := Follow(sockets, []netip.AddrPort{ap("0.0.0.0:80")}, time.Second)
	if len(ls) != 1 || ls[0].Listen != ap("0.0.0.0:80") || ls[0].Sockets != 0 {
		t.Fatalf("Follow = %+v, want the closed wildcard listener alone", ls)
	}
	if l := ls[0]; l.Established != 1 || l.Idle != 1 || l.Closing != 1 || l.UnackedBytes != 100 {
		t.Errorf("followed %+v, want 1 established and idle (the other came through 127.0.0.2:80), 1 closing with 100 bytes", l)
	}
}
