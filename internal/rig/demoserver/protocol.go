package demoserver

import "fmt"

// Protocol is a socket's transport protocol, as getsockopt SO_PROTOCOL
// reports it.
type Protocol int

// The protocols a demo server's sockets can have.
const (
	TCP   Protocol = 6
	MPTCP Protocol = 262 // IPPROTO_MPTCP, Linux
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case MPTCP:
		return "mptcp"
	}
	return fmt.Sprintf("protocol(%d)", int(p))
}

// Protocol reports the protocol the kernel gave the listening sockets,
// which may be TCP when MPTCP was asked for.
func (s *Server) Protocol() (Protocol, error) {
	p, err := socketProtocol(s.listeners[0])
	if err != nil {
		return 0, fmt.Errorf("get protocol of %s: %w", s.listeners[0].Addr(), err)
	}
	return Protocol(p), nil
}
