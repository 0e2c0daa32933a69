package pcblist

import (
	"net/netip"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// ByLocalPort returns the records whose local port is port.
func ByLocalPort(rs []Record, port uint16) []Record {
	var out []Record
	for _, r := range rs {
		if r.Local.Port() == port {
			out = append(out, r)
		}
	}
	return out
}

// Sockets translates records into observe's model; see the package
// documentation for how queued and half-open connections are counted.
//
// FreeBSD reports a connection that an IPv6 dual-stack listener accepted
// from an IPv4 client with IPv4 addresses, where Linux reports IPv4-mapped
// IPv6 ones. So that observe.Fold attributes it to that listener, Sockets
// maps such a connection's addresses into IPv6 when no IPv4 listener on its
// port would have taken it and a dual-stack wildcard listener would.
func Sockets(rs []Record) []observe.Socket {
	out := make([]observe.Socket, 0, len(rs))
	for _, r := range rs {
		s := r.Observe()
		if s.State != observe.Listen && s.Local.Addr().Is4() && !hasIPv4Listener(rs, s.Local) && hasDualStackListener(rs, s.Local.Port()) {
			s.Local = mapped(s.Local)
			s.Remote = mapped(s.Remote)
		}
		out = append(out, s)
	}
	return out
}

// Observe translates one record.
func (r Record) Observe() observe.Socket {
	s := observe.Socket{
		State:  r.State.Observe(),
		Local:  r.Local,
		Remote: r.Remote,
		RecvQ:  r.RecvCC,
		SendQ:  r.SendCC,
		Inode:  r.KSocket,
		V6Only: r.V6Only,
	}
	switch {
	case r.State == Listen:
		s.RecvQ, s.SendQ = r.QLen, r.QLimit
	case r.Incomplete():
		s.State, s.Inode = observe.SynRecv, 0
	case r.Queued():
		s.Inode = 0
	}
	return s
}

func hasIPv4Listener(rs []Record, local netip.AddrPort) bool {
	any4 := netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())
	for _, r := range rs {
		if r.State == Listen && (r.Local == local || r.Local == any4) {
			return true
		}
	}
	return false
}

func hasDualStackListener(rs []Record, port uint16) bool {
	any6 := netip.AddrPortFrom(netip.IPv6Unspecified(), port)
	for _, r := range rs {
		if r.State == Listen && r.Local == any6 && !r.V6Only {
			return true
		}
	}
	return false
}

func mapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
}
