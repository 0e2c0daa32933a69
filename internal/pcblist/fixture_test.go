package pcblist

import (
	"encoding/binary"
	"net/netip"
)

// The fixtures below are built from the struct layouts documented in
// layout.go, not captured from a kernel: each release writes the fields
// sockdrain reads at their offsets, and fills the ones it ignores the way
// that release would, so a parser that strayed onto them would notice.

// release is one FreeBSD release's flavour of the LP64 layout.
type release struct {
	name    string
	stack   string // xt_stack
	cc      string // xt_cc, 13.0 and later; empty for 12.x (spare64)
	hasPPCB bool   // inp_ppcb is filled in (13, 14); 15 made it spare
	soSplit bool   // 15's so_splice_so, in what was so_spare64[0]
}

var releases = []release{
	{name: "13.4", stack: "freebsd", cc: "newreno", hasPPCB: true},
	{name: "14.2", stack: "freebsd", cc: "cubic", hasPPCB: true},
	{name: "15.0", stack: "rack", cc: "cubic", soSplit: true},
}

// fixture is one socket to put in a list.
type fixture struct {
	state         TCPState
	local, remote netip.AddrPort
	dualStack     bool // an IPv6 wildcard socket that takes IPv4 too
	v6only        bool
	syncache      bool // a syncache entry: no socket, no xinpcb length
	noSocket      bool // a control block whose socket is gone
	ksock         uint64
	soState       uint16
	qlen, incqlen uint32
	qlimit        uint32
	rcv, snd      uint32
}

// buildList encodes fs as net.inet.tcp.pcblist would on rel.
func buildList(rel release, fs []fixture) []byte {
	b := buildXInpGen(uint32(len(fs)), 7)
	for i, f := range fs {
		b = append(b, buildXTCPCB(rel, f, uint64(100+i))...)
	}
	return append(b, buildXInpGen(uint32(len(fs)), 7)...)
}

func buildXInpGen(count uint32, gen uint64) []byte {
	b := make([]byte, xinpgenLen)
	le.PutUint64(b[0:], xinpgenLen) // xig_len
	le.PutUint32(b[8:], count)      // xig_count
	le.PutUint64(b[16:], gen)       // xig_gen
	le.PutUint64(b[24:], gen+1)     // xig_sogen
	return b
}

func buildXTCPCB(rel release, f fixture, gencnt uint64) []byte {
	b := make([]byte, xtcpcbLen)
	le.PutUint64(b[0:], xtcpcbLen)
	if !f.syncache {
		le.PutUint64(b[offXiLen:], xinpcbLen)
		le.PutUint64(b[xtInp+296:], gencnt) // inp_gencnt
		if rel.hasPPCB {
			le.PutUint64(b[xtInp+304:], 0xfffff80012340000+gencnt) // inp_ppcb
		}
	}
	putSocket(b, rel, f)
	putEndpoints(b, f)
	copy(b[408:440], rel.stack) // xt_stack
	copy(b[504:520], rel.cc)    // xt_cc
	le.PutUint32(b[offTCPState:], uint32(f.state))
	le.PutUint32(b[offTCPState+4:], 0x4a0) // t_flags
	return b
}

func putSocket(b []byte, rel release, f fixture) {
	if f.noSocket {
		return
	}
	le.PutUint64(b[offXsoLen:], xsocketLen)
	le.PutUint32(b[xtInp+xiSocket+96:], 6) // xso_protocol IPPROTO_TCP
	le.PutUint16(b[xtInp+xiSocket+156:], 1)
	le.PutUint16(b[offSoState:], f.soState)
	if f.syncache {
		le.PutUint16(b[offSoState:], ssConnecting)
		return
	}
	le.PutUint64(b[offSo:], f.ksock)
	le.PutUint64(b[xtInp+xiSocket+16:], f.ksock+0x800) // so_pcb
	if rel.soSplit {
		le.PutUint64(b[xtInp+xiSocket+32:], 0) // so_splice_so
	}
	le.PutUint32(b[xtInp+xiSocket+100:], familyOf(f)) // xso_family
	le.PutUint32(b[offQLen:], f.qlen)
	le.PutUint32(b[offIncQLen:], f.incqlen)
	le.PutUint32(b[offQLimit:], f.qlimit)
	le.PutUint32(b[offRcvCC:], f.rcv)
	le.PutUint32(b[offRcvCC+4:], 65536) // so_rcv.sb_hiwat
	le.PutUint32(b[offSndCC:], f.snd)
	le.PutUint32(b[offSndCC+4:], 32768) // so_snd.sb_hiwat
}

func familyOf(f fixture) uint32 {
	if f.local.Addr().Is6() {
		return 28 // AF_INET6
	}
	return 2 // AF_INET
}

func putEndpoints(b []byte, f fixture) {
	binary.BigEndian.PutUint16(b[offLPort:], f.local.Port())
	binary.BigEndian.PutUint16(b[offFPort:], f.remote.Port())
	l, r := f.local.Addr().As16(), f.remote.Addr().As16()
	vflag := byte(inpIPv6)
	if f.local.Addr().Is4() {
		vflag = inpIPv4
		l, r = [16]byte{}, [16]byte{}
		a4, r4 := f.local.Addr().As4(), f.remote.Addr().As4()
		copy(l[12:], a4[:])
		copy(r[12:], r4[:])
	} else if f.dualStack {
		vflag |= inpIPv4
	}
	copy(b[offLAddr:], l[:])
	copy(b[offFAddr:], r[:])
	b[offInpVFlag] = vflag
	if f.v6only {
		le.PutUint32(b[offInpFlags:], in6pV6Only)
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// drainScene is a listener on *:8080 in the middle of a drain, with every
// kind of record a drain must count, and a socket on another port.
func drainScene() []fixture {
	const l = 0xfffff80001000000
	ls := ap("0.0.0.0:8080")
	est := func(remote string, k uint64, soState uint16) fixture {
		return fixture{state: Established, local: ap("10.0.0.1:8080"), remote: ap(remote), ksock: k, soState: soState}
	}
	return []fixture{
		{state: Listen, local: ls, remote: ap("0.0.0.0:0"), ksock: l, qlen: 3, incqlen: 1, qlimit: 128},
		est("10.0.0.9:40001", l+0x100, sqComplete),
		est("10.0.0.9:40002", l+0x200, sqComplete),
		est("10.0.0.9:40003", l+0x300, sqComplete),
		est("10.0.0.9:40004", l+0x400, sqIncomplete),
		{state: SynReceived, local: ap("10.0.0.1:8080"), remote: ap("10.0.0.8:50001"), syncache: true},
		{state: SynReceived, local: ap("10.0.0.1:8080"), remote: ap("10.0.0.8:50002"), syncache: true},
		est("10.0.0.7:41000", l+0x500, 0x0002),
		{state: Established, local: ap("10.0.0.1:8080"), remote: ap("10.0.0.7:41001"), ksock: l + 0x600, soState: 0x0002, rcv: 12, snd: 900},
		{state: CloseWait, local: ap("10.0.0.1:8080"), remote: ap("10.0.0.7:41002"), ksock: l + 0x700},
		{state: FinWait1, local: ap("10.0.0.1:8080"), remote: ap("10.0.0.7:41003"), ksock: l + 0x800, snd: 1000},
		{state: LastAck, local: ap("10.0.0.1:8080"), remote: ap("10.0.0.7:41004"), ksock: l + 0x900, snd: 50},
		{state: TimeWait, local: ap("10.0.0.1:8080"), remote: ap("10.0.0.7:41005"), noSocket: true},
		{state: Established, local: ap("10.0.0.1:22"), remote: ap("10.0.0.7:41006"), ksock: l + 0xa00},
	}
}
