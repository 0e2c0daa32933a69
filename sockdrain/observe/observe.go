// Package observe is the model every observer reports in: one Socket per
// kernel socket on the target port, folded into one Listener per listening
// address with the counts a drain waits on.
//
// Sources (inet_diag on Linux, the pcblist sysctl on FreeBSD) translate
// their own records into Socket; the folding here is the same on every OS.
package observe

import (
	"net/netip"
	"slices"
	"time"
)

// State is a TCP state, numbered as on Linux. Sources from other systems map
// their own numbering onto it.
type State uint8

// TCP states, with Linux's numbers.
const (
	Established State = 1
	SynSent     State = 2
	SynRecv     State = 3
	FinWait1    State = 4
	FinWait2    State = 5
	TimeWait    State = 6
	Close       State = 7
	CloseWait   State = 8
	LastAck     State = 9
	Listen      State = 10
	Closing     State = 11
	NewSynRecv  State = 12
)

var stateNames = [...]string{
	Established: "ESTABLISHED", SynSent: "SYN_SENT", SynRecv: "SYN_RECV",
	FinWait1: "FIN_WAIT1", FinWait2: "FIN_WAIT2", TimeWait: "TIME_WAIT",
	Close: "CLOSE", CloseWait: "CLOSE_WAIT", LastAck: "LAST_ACK",
	Listen: "LISTEN", Closing: "CLOSING", NewSynRecv: "SYN_RECV",
}

func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// Socket is one TCP socket whose local port is the target port.
type Socket struct {
	State  State
	Local  netip.AddrPort
	Remote netip.AddrPort
	// RecvQ is the accept-queue length for a listener, and unread bytes
	// otherwise.
	RecvQ uint32
	// SendQ is the backlog limit for a listener, and otherwise the data
	// bytes not yet sent or not yet acknowledged by the peer. A FIN is not
	// counted.
	SendQ uint32
	// Inode identifies the socket's file. It is zero for a connection no
	// process has accepted yet, and for an orphan whose owner closed it.
	Inode uint64
	// V6Only is set for an IPv6 socket that does not take IPv4 clients.
	V6Only bool
	// Cookie is the kernel's cookie of the socket (SO_COOKIE), which tells
	// it from a later socket on the same addresses; BoundIf is the index of
	// the interface it is bound to, or 0. Together with the addresses they
	// name the socket for a lookup. Zero where the OS does not say.
	Cookie  uint64
	BoundIf uint32
	// SinceRecv and SinceSent are how long ago the socket last received
	// and sent data. They are known only where Activity is set.
	SinceRecv, SinceSent time.Duration
	Activity             bool
}

// IdleFor reports whether s is an accepted connection at rest between
// requests: nothing unread, unsent or unacknowledged, no data received for
// at least d, and the server spoke last. The last condition keeps a
// connection whose request is still being worked on from counting as idle.
func (s Socket) IdleFor(d time.Duration) bool {
	return d > 0 && s.State == Established && s.Inode != 0 && s.Activity &&
		s.RecvQ == 0 && s.SendQ == 0 && s.SinceRecv >= d && s.SinceSent <= s.SinceRecv
}

// Listener is the state of one listening address: a single socket or a
// SO_REUSEPORT group, with the connections that arrived through it.
type Listener struct {
	Listen netip.AddrPort `json:"listen"`
	// Sockets is the number of listening sockets bound to Listen.
	Sockets int   `json:"sockets"`
	PIDs    []int `json:"pids"`
	// AcceptQueue counts connections handshaken but not yet accepted.
	AcceptQueue int `json:"accept_queue"`
	// Backlog is the accept-queue limit, summed over Sockets.
	Backlog int `json:"backlog"`
	// SynRecv counts half-open handshakes.
	SynRecv int `json:"syn_recv"`
	// Established and CloseWait count accepted connections only; those
	// still queued are in AcceptQueue. Idle counts the established ones
	// at rest between requests (Socket.IdleFor).
	Established int `json:"established"`
	Idle        int `json:"idle"`
	CloseWait   int `json:"close_wait"`
	// Closing counts sockets in FIN_WAIT1, LAST_ACK or CLOSING, whose
	// FIN the peer has not yet acknowledged, and UnackedBytes the data
	// they still wait to have acknowledged before it.
	Closing      int   `json:"closing"`
	UnackedBytes int64 `json:"unacked_bytes"`
	// Gates names the sockdrain gates armed on this listener.
	Gates []string `json:"gates"`

	// Inodes of the listening sockets, for finding their owners.
	Inodes []uint64 `json:"-"`
	// V6Only is set for an IPv6 listener that takes no IPv4 clients.
	V6Only bool `json:"-"`
}

// Fold groups listening sockets by address and attributes every other socket
// to the listener that accepted it: the one bound to its local address if
// there is one, else the wildcard listener of its family. Established
// connections idle for idle count as Idle; zero counts none.
func Fold(sockets []Socket, idle time.Duration) []Listener {
	var ls []Listener
	index := map[netip.AddrPort]int{}
	for _, s := range sockets {
		if s.State != Listen {
			continue
		}
		i, ok := index[s.Local]
		if !ok {
			i = len(ls)
			index[s.Local] = i
			ls = append(ls, Listener{Listen: s.Local, PIDs: []int{}})
		}
		l := &ls[i]
		l.Sockets++
		l.V6Only = s.V6Only
		l.AcceptQueue += int(s.RecvQ)
		l.Backlog += int(s.SendQ)
		if s.Inode != 0 {
			l.Inodes = append(l.Inodes, s.Inode)
		}
	}
	for _, s := range sockets {
		if i, ok := arrivedThrough(index, s); ok {
			count(&ls[i], s, idle)
		}
	}
	slices.SortFunc(ls, func(a, b Listener) int { return compareAddrPort(a.Listen, b.Listen) })
	return ls
}

// arrivedThrough finds the listener in index that accepted s: the one bound
// to its local address, else the wildcard listener of its family. Listening
// sockets, and sockets whose listener has closed, have none.
func arrivedThrough(index map[netip.AddrPort]int, s Socket) (int, bool) {
	if s.State == Listen {
		return 0, false
	}
	if i, ok := index[s.Local]; ok {
		return i, true
	}
	i, ok := index[wildcard(s.Local)]
	return i, ok
}

// Pending returns the sockets a drain of ls still waits on: half-open
// handshakes, queued and accepted connections, and closing sockets that
// hold unacknowledged bytes.
func Pending(sockets []Socket, ls []Listener) []Socket {
	index := map[netip.AddrPort]int{}
	for i, l := range ls {
		index[l.Listen] = i
	}
	var pending []Socket
	for _, s := range sockets {
		if _, ok := arrivedThrough(index, s); ok && (s.State.open() || s.State.closing()) {
			pending = append(pending, s)
		}
	}
	return pending
}

// open reports whether a socket in state s still carries a connection a
// drain waits for, whatever it holds.
func (s State) open() bool {
	switch s {
	case SynRecv, NewSynRecv, Established, CloseWait:
		return true
	}
	return false
}

// Follow is Fold for a drain whose server may have closed its listeners:
// each address in listens keeps a Listener, with Sockets 0 once closed, and
// the connections that arrived through it, which the server may have left
// behind as orphans. Listeners of other addresses are left out.
func Follow(sockets []Socket, listens []netip.AddrPort, idle time.Duration) []Listener {
	all := slices.Clone(sockets)
	var closed []netip.AddrPort
	for _, ap := range listens {
		if !slices.ContainsFunc(sockets, func(s Socket) bool { return s.State == Listen && s.Local == ap }) {
			all = append(all, Socket{State: Listen, Local: ap})
			closed = append(closed, ap)
		}
	}
	ls := slices.DeleteFunc(Fold(all, idle), func(l Listener) bool { return !slices.Contains(listens, l.Listen) })
	for i := range ls {
		if slices.Contains(closed, ls[i].Listen) {
			ls[i].Sockets = 0
		}
	}
	return ls
}

// closing reports whether a socket in state s has sent its FIN and waits
// for the peer to acknowledge it, and any data before it.
func (s State) closing() bool {
	switch s {
	case FinWait1, LastAck, Closing:
		return true
	}
	return false
}

func count(l *Listener, s Socket, idle time.Duration) {
	// Keep in step with Pending.
	switch s.State {
	case SynRecv, NewSynRecv:
		l.SynRecv++
	case Established:
		if s.Inode != 0 {
			l.Established++
		}
		if s.IdleFor(idle) {
			l.Idle++
		}
	case CloseWait:
		if s.Inode != 0 {
			l.CloseWait++
		}
	case FinWait1, LastAck, Closing:
		l.Closing++
		l.UnackedBytes += int64(s.SendQ)
	}
}

// wildcard is the unspecified address of ap's family, with ap's port. An
// IPv4-mapped address keeps the IPv6 family: it reached a dual-stack socket.
func wildcard(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port())
}

func compareAddrPort(a, b netip.AddrPort) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return int(a.Port()) - int(b.Port())
}

// Serving returns the listeners that take connections to addr, the way the
// kernel chooses: those bound to addr itself, else the wildcard listener of
// its family, else (for IPv4) a dual-stack IPv6 wildcard listener. An invalid
// addr selects every listener.
func Serving(ls []Listener, addr netip.Addr) []Listener {
	if !addr.IsValid() {
		return ls
	}
	addr = addr.Unmap()
	var exact, any4, any6 []Listener
	for _, l := range ls {
		switch a := l.Listen.Addr(); {
		case a.Unmap() == addr:
			exact = append(exact, l)
		case a == netip.IPv4Unspecified():
			any4 = append(any4, l)
		case a == netip.IPv6Unspecified() && (addr.Is6() || !l.V6Only):
			any6 = append(any6, l)
		}
	}
	switch {
	case len(exact) > 0 || addr.IsUnspecified():
		return exact
	case addr.Is4() && len(any4) > 0:
		return any4
	default:
		return any6
	}
}
