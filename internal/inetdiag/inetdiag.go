// Package inetdiag speaks the NETLINK_SOCK_DIAG protocol for TCP sockets:
// the request that asks the kernel for the sockets on one local port, and the
// parser for its answers. The kernel does the port filtering, so a query
// costs a walk of the hash tables, not a copy of every socket to user space.
//
// The messages are built and parsed here on every OS, so they can be tested
// and fuzzed anywhere; only Dial needs Linux.
package inetdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// Netlink constants from linux/sock_diag.h and linux/inet_diag.h.
const (
	sockDiagByFamily = 20
	tcpDiagGetSock   = 18 // TCPDIAG_GETSOCK: the request of struct inet_diag_req

	attrInfo     = 2 // INET_DIAG_INFO: struct tcp_info
	attrSKV6Only = 11

	// Offsets in struct tcp_info (linux/tcp.h) of the times, in
	// milliseconds, since the socket last sent and received data.
	infoLastDataSent = 44
	infoLastDataRecv = 52
	infoMinLen       = infoLastDataRecv + 4

	requestLen       = 56 // struct inet_diag_req_v2
	compatRequestLen = 60 // struct inet_diag_req
	messageLen       = 72 // struct inet_diag_msg

	afInet  = 2
	afInet6 = 10

	ipprotoTCP = 6
)

// States is a set of TCP states, as the kernel's idiag_states bitmask.
type States uint32

// StatesOf returns the set holding the given states.
func StatesOf(states ...observe.State) States {
	var s States
	for _, st := range states {
		s |= 1 << st
	}
	return s
}

// DrainStates are the states a drain waits on, and the listeners.
var DrainStates = StatesOf(observe.Listen, observe.SynRecv, observe.NewSynRecv,
	observe.Established, observe.CloseWait, observe.FinWait1, observe.LastAck, observe.Closing)

// Family selects the address families a Request dumps.
type Family uint8

const (
	// AnyFamily dumps IPv4 and IPv6 sockets in one walk of the kernel's
	// hash tables, which both families share.
	AnyFamily Family = iota
	IPv4
	IPv6
)

// Request is one inet_diag dump request.
//
// A request for one family is struct inet_diag_req_v2 (SOCK_DIAG_BY_FAMILY).
// AnyFamily uses the older struct inet_diag_req (TCPDIAG_GETSOCK), whose
// kernel handler leaves the family unset, so one walk answers for both;
// with SOCK_DIAG_BY_FAMILY, two requests would walk the same tables twice.
type Request struct {
	Family Family
	Port   uint16 // local port; 0 means any
	States States
	// Info asks for each socket's struct tcp_info (INET_DIAG_INFO), which
	// tells when it last sent and received data.
	Info bool
}

// ext is the request's idiag_ext: the attributes to add to each answer.
func (r Request) ext() byte {
	if r.Info {
		return 1 << (attrInfo - 1)
	}
	return 0
}

// MessageType is the netlink message type r is sent as.
func (r Request) MessageType() uint16 {
	if r.Family == AnyFamily {
		return tcpDiagGetSock
	}
	return sockDiagByFamily
}

// MarshalBinary encodes r as struct inet_diag_req_v2, or as struct
// inet_diag_req for AnyFamily.
func (r Request) MarshalBinary() ([]byte, error) {
	if r.Family == AnyFamily {
		b := make([]byte, compatRequestLen)
		b[3] = r.ext()
		binary.BigEndian.PutUint16(b[4:6], r.Port) // id.idiag_sport
		binary.NativeEndian.PutUint32(b[52:56], uint32(r.States))
		return b, nil
	}
	b := make([]byte, requestLen)
	b[0] = afInet
	if r.Family == IPv6 {
		b[0] = afInet6
	}
	b[1] = ipprotoTCP
	b[2] = r.ext()
	binary.NativeEndian.PutUint32(b[4:8], uint32(r.States))
	binary.BigEndian.PutUint16(b[8:10], r.Port) // id.idiag_sport
	return b, nil
}

// MarshalLookup encodes the request for one socket, s, by its addresses,
// interface and cookie (struct inet_diag_req_v2, sent without NLM_F_DUMP):
// the kernel finds it in its hash tables, without a walk, and answers with
// one inet_diag_msg, or ENOENT or ESTALE once it is gone. info asks for
// its tcp_info, as Request.Info does.
func MarshalLookup(s observe.Socket, info bool) []byte {
	b := make([]byte, requestLen)
	b[0], b[1] = afInet6, ipprotoTCP
	if s.Local.Addr().Is4() {
		b[0] = afInet
	}
	b[2] = Request{Info: info}.ext()
	binary.NativeEndian.PutUint32(b[4:8], ^uint32(0))
	binary.BigEndian.PutUint16(b[8:10], s.Local.Port())   // id.idiag_sport
	binary.BigEndian.PutUint16(b[10:12], s.Remote.Port()) // id.idiag_dport
	local, remote := s.Local.Addr().AsSlice(), s.Remote.Addr().AsSlice()
	copy(b[12:28], local)
	copy(b[28:44], remote)
	binary.NativeEndian.PutUint32(b[44:48], s.BoundIf)
	binary.NativeEndian.PutUint64(b[48:56], s.Cookie)
	return b
}

// ErrShort reports a message shorter than its declared contents.
var ErrShort = errors.New("inet_diag message too short")

// ParseMessage decodes one inet_diag_msg with its attributes.
func ParseMessage(b []byte) (observe.Socket, error) {
	var s observe.Socket
	if len(b) < messageLen {
		return s, fmt.Errorf("parse inet_diag_msg of %d bytes: %w", len(b), ErrShort)
	}
	family := b[0]
	var addrLen int
	switch family {
	case afInet:
		addrLen = 4
	case afInet6:
		addrLen = 16
	default:
		return s, fmt.Errorf("parse inet_diag_msg: unknown address family %d", family)
	}
	s.State = observe.State(b[1])
	sport := binary.BigEndian.Uint16(b[4:6])
	dport := binary.BigEndian.Uint16(b[6:8])
	src, _ := netip.AddrFromSlice(b[8 : 8+addrLen])
	dst, _ := netip.AddrFromSlice(b[24 : 24+addrLen])
	s.Local = netip.AddrPortFrom(src, sport)
	s.Remote = netip.AddrPortFrom(dst, dport)
	s.RecvQ = binary.NativeEndian.Uint32(b[56:60])
	s.SendQ = binary.NativeEndian.Uint32(b[60:64])
	if sentFIN(s.State) && s.SendQ > 0 {
		s.SendQ-- // the FIN takes a sequence number, but it is not data
	}
	s.BoundIf = binary.NativeEndian.Uint32(b[40:44])
	s.Cookie = binary.NativeEndian.Uint64(b[44:52])
	s.Inode = uint64(binary.NativeEndian.Uint32(b[68:72]))

	ad, err := netlink.NewAttributeDecoder(b[messageLen:])
	if err != nil {
		return s, fmt.Errorf("parse inet_diag attributes in %d bytes: %w: %w", len(b)-messageLen, ErrShort, err)
	}
	for ad.Next() {
		switch v := ad.Bytes(); {
		case ad.Type() == attrSKV6Only && len(v) >= 1:
			s.V6Only = v[0] != 0
		case ad.Type() == attrInfo && len(v) >= infoMinLen:
			s.Activity = true
			s.SinceSent = millis(v[infoLastDataSent:])
			s.SinceRecv = millis(v[infoLastDataRecv:])
		}
	}
	if err := ad.Err(); err != nil {
		return s, fmt.Errorf("parse inet_diag attributes in %d bytes: %w: %w", len(b)-messageLen, ErrShort, err)
	}
	return s, nil
}

func millis(b []byte) time.Duration {
	return time.Duration(binary.NativeEndian.Uint32(b)) * time.Millisecond
}

// sentFIN reports whether a socket in state st has queued its FIN, which
// idiag_wqueue (write_seq - snd_una) counts until the peer acknowledges it.
func sentFIN(st observe.State) bool {
	switch st {
	case observe.FinWait1, observe.Closing, observe.LastAck:
		return true
	}
	return false
}
