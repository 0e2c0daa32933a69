package reuseport

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// ipprotoMPTCP is IPPROTO_MPTCP; SK_REUSEPORT programs can't attach to
// MPTCP sockets (EOPNOTSUPP).
const ipprotoMPTCP = 262

// checkSockets returns an error wrapping gate.ErrNotEligible unless every
// socket is a listening TCP socket with SO_REUSEPORT set.
func checkSockets(socks []*os.File) error {
	if len(socks) == 0 {
		return fmt.Errorf("check sockets: no socket of the listener: %w", gate.ErrNotEligible)
	}
	for _, f := range socks {
		if err := checkSocket(f); err != nil {
			return err
		}
	}
	return nil
}

func checkSocket(f *os.File) error {
	opts := map[int]int{}
	err := sockfd.Control(f, func(fd int) error {
		for _, opt := range []int{unix.SO_ACCEPTCONN, unix.SO_REUSEPORT, unix.SO_PROTOCOL} {
			v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
			if err != nil {
				return err
			}
			opts[opt] = v
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check socket %s: %w", f.Name(), os.NewSyscallError("getsockopt", err))
	}
	return eligibility(f.Name(), opts[unix.SO_ACCEPTCONN], opts[unix.SO_REUSEPORT], opts[unix.SO_PROTOCOL])
}

// eligibility judges one socket by its SO_ACCEPTCONN, SO_REUSEPORT and
// SO_PROTOCOL values.
func eligibility(name string, listening, reuseport, protocol int) error {
	switch {
	case protocol == ipprotoMPTCP:
		return fmt.Errorf("check socket %s: MPTCP sockets can't run reuseport programs: %w", name, gate.ErrNotEligible)
	case protocol != unix.IPPROTO_TCP:
		return fmt.Errorf("check socket %s: protocol %d is not TCP: %w", name, protocol, gate.ErrNotEligible)
	case listening == 0:
		return fmt.Errorf("check socket %s: not listening: %w", name, gate.ErrNotEligible)
	case reuseport == 0:
		return fmt.Errorf("check socket %s: SO_REUSEPORT was not set before bind: %w", name, gate.ErrNotEligible)
	}
	return nil
}
