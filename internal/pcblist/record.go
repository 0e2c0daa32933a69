package pcblist

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

var le = binary.LittleEndian

// parseRecord decodes one xtcpcb of lay.XTCPCB bytes.
func parseRecord(b []byte, lay Layout) (Record, error) {
	if err := checkInner(b, lay); err != nil {
		return Record{}, err
	}
	r := Record{
		State:   TCPState(int32(le.Uint32(b[offTCPState:]))),
		V6Only:  le.Uint32(b[offInpFlags:])&in6pV6Only != 0,
		KSocket: le.Uint64(b[offSo:]),
		SoState: le.Uint16(b[offSoState:]),
		QLen:    le.Uint32(b[offQLen:]),
		IncQLen: le.Uint32(b[offIncQLen:]),
		QLimit:  le.Uint32(b[offQLimit:]),
		RecvCC:  le.Uint32(b[offRcvCC:]),
		SendCC:  le.Uint32(b[offSndCC:]),
	}
	if r.State < Closed || r.State > maxKnownState {
		return Record{}, fmt.Errorf("TCP state %d: %w", r.State, ErrMalformed)
	}
	var err error
	r.Local, r.Remote, err = endpoints(b)
	return r, err
}

// checkInner checks the lengths of the embedded xinpcb and xsocket. The
// kernel leaves either zero when it has nothing to put there: xi_len in a
// syncache entry, xso_len when the control block has lost its socket.
func checkInner(b []byte, lay Layout) error {
	if n := le.Uint64(b[offXiLen:]); n != 0 && n != uint64(lay.XInPCB) {
		return fmt.Errorf("xinpcb length %d, want %d: %w", n, lay.XInPCB, ErrUnknownLayout)
	}
	if n := le.Uint64(b[offXsoLen:]); n != 0 && n != uint64(lay.XSocket) {
		return fmt.Errorf("xsocket length %d, want %d: %w", n, lay.XSocket, ErrUnknownLayout)
	}
	return nil
}

// endpoints reads the local and foreign address and port. inp_vflag says
// which family: INP_IPV6 means 16-byte addresses, else INP_IPV4 means the
// IPv4 address in the last 4 bytes.
func endpoints(b []byte) (local, remote netip.AddrPort, err error) {
	lport := binary.BigEndian.Uint16(b[offLPort:])
	fport := binary.BigEndian.Uint16(b[offFPort:])
	var laddr, faddr netip.Addr
	switch vflag := b[offInpVFlag]; {
	case vflag&inpIPv6 != 0:
		laddr = netip.AddrFrom16([16]byte(b[offLAddr : offLAddr+inAddrLength]))
		faddr = netip.AddrFrom16([16]byte(b[offFAddr : offFAddr+inAddrLength]))
	case vflag&inpIPv4 != 0:
		laddr = netip.AddrFrom4([4]byte(b[offLAddr+inAddr4Skip : offLAddr+inAddrLength]))
		faddr = netip.AddrFrom4([4]byte(b[offFAddr+inAddr4Skip : offFAddr+inAddrLength]))
	default:
		return local, remote, fmt.Errorf("inp_vflag %#x names no address family: %w", vflag, ErrMalformed)
	}
	return netip.AddrPortFrom(laddr, lport), netip.AddrPortFrom(faddr, fport), nil
}
