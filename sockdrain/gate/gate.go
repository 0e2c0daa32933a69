// Package gate defines what every gate is: a way to make new TCP connections
// to one listener fail at once with a RST (the client sees ECONNREFUSED),
// while the listening socket, its accept queue and its established
// connections are left untouched.
//
// The implementations live in the packages below this one, one per kernel
// mechanism. Each one provides:
//
//	func Probe() error                           // nil, or why this kernel can't
//	func Open(l gate.Listener) (*Gate, error)    // find or build the gate's state
//
// and its *Gate implements the Gate interface.
package gate

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Gate is one listener's gate.
//
// Arm and Disarm are idempotent. An armed gate outlives the process that
// armed it: Close releases this process's handles and leaves the kernel
// state in place, so a later process can Open the same gate and see or
// change it. Disarm removes every kernel object the gate made.
type Gate interface {
	// Arm starts refusing new connections. When it returns, the next SYN
	// to the listener is answered with a RST.
	Arm() error
	// Disarm lets new connections through again and removes the gate's
	// kernel state: programs, links, pins, maps and rules.
	Disarm() error
	// Armed reports whether the gate refuses connections now.
	Armed() (bool, error)
	// Close releases the process's handles. It does not disarm.
	Close() error
}

// Listener is what a gate closes: one listening address in one network
// namespace, served by one socket or one SO_REUSEPORT group.
type Listener struct {
	// NetNS is the listener's network namespace, open as an nsfs file.
	NetNS *os.File
	// NetNSInode identifies that namespace in names of pins and rules.
	NetNSInode uint64
	// Addr is the address the listener is bound to. An unspecified address
	// means a wildcard listener of that family.
	Addr netip.AddrPort
	// Sockets are duplicates of the listening sockets, when the caller
	// could get them. Gates that act on the socket need them.
	Sockets []*os.File
}

// Key names l in pins and rules: unique per namespace, address and port,
// as NETNSINODE_ADDRHEX_PORT. It holds no dots, colons or dashes, which
// bpffs and rule comments handle badly.
func (l Listener) Key() string {
	return fmt.Sprintf("%d_%x_%d", l.NetNSInode, l.Addr.Addr().AsSlice(), l.Addr.Port())
}

// ParseKey reverses Key, as far as a key says: the namespace inode and
// the listener's address.
func ParseKey(key string) (netnsInode uint64, addr netip.AddrPort, err error) {
	parts := strings.Split(key, "_")
	if len(parts) != 3 {
		return 0, addr, fmt.Errorf("parse gate key %q: want NETNSINODE_ADDRHEX_PORT", key)
	}
	ino, err1 := strconv.ParseUint(parts[0], 10, 64)
	raw, err2 := hex.DecodeString(parts[1])
	port, err3 := strconv.ParseUint(parts[2], 10, 16)
	a, ok := netip.AddrFromSlice(raw)
	if err := errors.Join(err1, err2, err3); err != nil || !ok {
		return 0, addr, fmt.Errorf("parse gate key %q: %w", key, errors.Join(err, errors.New("bad address")))
	}
	return ino, netip.AddrPortFrom(a, uint16(port)), nil
}

// ErrNotSupported reports a gate this kernel or OS cannot provide. Probe
// wraps it with the reason.
var ErrNotSupported = errors.New("gate not supported")

// ErrNotEligible reports a gate that works on this kernel but not on this
// listener, such as the reuseport gate on an MPTCP socket.
var ErrNotEligible = errors.New("gate not eligible for this listener")
