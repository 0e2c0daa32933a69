// Package pcblist parses FreeBSD's TCP socket list, the bytes of
// `sysctl net.inet.tcp.pcblist`: a struct xinpgen, one struct xtcpcb per
// TCP control block or syncache entry, then a trailing xinpgen. It turns
// them into observe.Socket, the model every observer reports in.
//
// The parser is plain Go, so it runs, is tested and is fuzzed on any OS. It
// trusts no offset before it has checked the record sizes the kernel wrote
// against a layout it knows (see Known), and refuses anything else with
// ErrUnknownLayout. Reading the sysctl needs FreeBSD.
//
// # Queues and half-open connections
//
// FreeBSD keeps handshakes in progress in the syncache, which pcblist
// exports as SYN_RECEIVED records with no socket (KSocket == 0). A
// completed connection gets a socket, which waits on the listener's
// complete queue (so_qlen, SQ_COMP) until accept(2), or on its incomplete
// queue (so_incqlen, SQ_INCOMP) while an accept filter holds it. Every
// connection is in exactly one of these places, and has exactly one record,
// so Sockets counts it once:
//
//   - a syncache entry is SYN_RECV;
//   - a socket on the incomplete queue is reported as SYN_RECV too: the
//     server cannot accept it yet, and a drain must wait for it;
//   - a socket on the complete queue has Inode 0, like a not yet accepted
//     child on Linux, and is counted in the listener's RecvQ (so_qlen).
//
// The listener's own so_incqlen is kept in Record.IncQLen for callers that
// want it, and is not added to anything.
package pcblist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Errors Parse wraps.
var (
	// ErrUnknownLayout reports records of a size no known layout has.
	ErrUnknownLayout = errors.New("unknown pcblist layout")
	// ErrTruncated reports a list that ends inside a record or before its
	// trailing xinpgen.
	ErrTruncated = errors.New("pcblist truncated")
	// ErrMalformed reports a record whose contents cannot be right, such
	// as a TCP state FreeBSD does not have.
	ErrMalformed = errors.New("malformed pcblist record")
	// ErrTorn reports a list that changed while the kernel wrote it: the
	// generation (xig_gen) in its trailing xinpgen is not the one in its
	// header. Such a list can lack any record, a live listener's too, so
	// Parse refuses it and Consistent reads again.
	ErrTorn = errors.New("pcblist changed while it was read")
)

// Record is one xtcpcb: a TCP control block, or a syncache entry.
type Record struct {
	State  TCPState
	Local  netip.AddrPort
	Remote netip.AddrPort
	// V6Only is set for an IPv6 socket with IPV6_V6ONLY.
	V6Only bool
	// KSocket is the kernel address of the socket (xso_so), which also
	// names it in kern.file (xf_data). It is zero for a syncache entry
	// and for a control block whose socket is gone (TIME_WAIT).
	KSocket uint64
	// SoState is so_state, with the accept-queue state (SQ_*) or'ed in.
	SoState uint16
	// QLen, IncQLen and QLimit are a listener's complete-queue length,
	// incomplete-queue length and queue limit; zero otherwise.
	QLen, IncQLen, QLimit uint32
	// RecvCC and SendCC are the bytes in the receive and send buffers:
	// unread, and unsent or unacknowledged.
	RecvCC, SendCC uint32
}

// Queued reports whether r is a connection on a listener's complete queue,
// handshaken but not yet accepted.
func (r Record) Queued() bool { return r.State != Listen && r.SoState&sqComplete != 0 }

// Incomplete reports whether r is a connection on a listener's incomplete
// queue, held there by an accept filter.
func (r Record) Incomplete() bool { return r.State != Listen && r.SoState&sqIncomplete != 0 }

// Parse decodes the bytes of net.inet.tcp.pcblist.
func Parse(b []byte) ([]Record, error) {
	lay, err := checkHeader(b)
	if err != nil {
		return nil, err
	}
	var rs []Record
	for off := lay.XInpGen; ; {
		n, err := recordLen(b, off)
		if err != nil {
			return nil, err
		}
		switch n {
		case lay.XInpGen:
			if err := checkGen(b, off); err != nil {
				return nil, fmt.Errorf("parse xinpgen trailer after %d records: %w", len(rs), err)
			}
			return rs, nil
		case lay.XTCPCB:
			r, err := parseRecord(b[off:off+n], lay)
			if err != nil {
				return nil, fmt.Errorf("parse xtcpcb at byte %d: %w", off, err)
			}
			rs = append(rs, r)
			off += n
		default:
			return nil, fmt.Errorf("parse record at byte %d: length %d, want xtcpcb (%d) or xinpgen (%d): %w",
				off, n, lay.XTCPCB, lay.XInpGen, ErrUnknownLayout)
		}
	}
}

// checkGen compares the generation and count of the trailing xinpgen at
// off with the header's. The kernel reads both xig_gen values under no lock
// that covers the records in between, so a list whose generations differ
// was written while sockets came and went. The counts are not compared on
// their own: the header counts sockets the caller may not be allowed to see.
func checkGen(b []byte, off int) error {
	headGen, tailGen := le.Uint64(b[xigGen:]), le.Uint64(b[off+xigGen:])
	if headGen == tailGen {
		return nil
	}
	return fmt.Errorf("xig_gen %d in the header (count %d), %d in the trailer (count %d): %w",
		headGen, le.Uint32(b[xigCount:]), tailGen, le.Uint32(b[off+xigCount:]), ErrTorn)
}

// checkHeader finds the layout whose xinpgen size the header declares.
func checkHeader(b []byte) (Layout, error) {
	n, err := recordLen(b, 0)
	if err != nil {
		return Layout{}, err
	}
	for _, lay := range Known {
		if n == lay.XInpGen {
			return lay, nil
		}
	}
	return Layout{}, fmt.Errorf("parse xinpgen header: length %d, known: %s: %w", n, knownSizes(), ErrUnknownLayout)
}

func knownSizes() string {
	s := ""
	for i, lay := range Known {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%s (xinpgen %d, xtcpcb %d)", lay.Name, lay.XInpGen, lay.XTCPCB)
	}
	return s
}

// recordLen reads the ksize_t that starts every record, and checks that
// the whole record is there.
func recordLen(b []byte, off int) (int, error) {
	if len(b)-off < 8 {
		return 0, fmt.Errorf("read record length at byte %d of %d: %w", off, len(b), ErrTruncated)
	}
	n := binary.LittleEndian.Uint64(b[off:])
	if n < 8 || n > uint64(len(b)-off) {
		return 0, fmt.Errorf("read record of length %d at byte %d of %d: %w", n, off, len(b), ErrTruncated)
	}
	return int(n), nil
}
