package inetdiag

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
	"golang.org/x/sys/unix"
)

// Conn is a NETLINK_SOCK_DIAG socket in one network namespace.
type Conn struct {
	nl *netlink.Conn
}

// Dial opens a sock_diag socket in the network namespace open at netnsFD, or
// in the caller's namespace when netnsFD is negative.
func Dial(netnsFD int) (*Conn, error) {
	cfg := &netlink.Config{Strict: true}
	if netnsFD >= 0 {
		cfg.NetNS = netnsFD
	}
	nl, err := netlink.Dial(sockDiagProtocol, cfg)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	return &Conn{nl: nl}, nil
}

// Close releases the socket.
func (c *Conn) Close() error { return c.nl.Close() }

// Sockets dumps the TCP sockets that match r.
func (c *Conn) Sockets(r Request) ([]observe.Socket, error) {
	data, _ := r.MarshalBinary()
	msgs, err := c.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(r.MessageType()), Flags: netlink.Request | netlink.Dump},
		Data:   data,
	})
	if err != nil {
		return nil, fmt.Errorf("dump TCP sockets on port %d: %w", r.Port, err)
	}
	sockets := make([]observe.Socket, 0, len(msgs))
	for _, m := range msgs {
		s, err := ParseMessage(m.Data)
		if err != nil {
			return nil, err
		}
		sockets = append(sockets, s)
	}
	return sockets, nil
}

// Lookup asks for each of sockets again by its addresses and cookie (see
// MarshalLookup), and returns those still there in one of states: one
// question each, whose cost does not grow with the sockets on the host, as
// a dump's does.
func (c *Conn) Lookup(sockets []observe.Socket, states States, info bool) ([]observe.Socket, error) {
	var found []observe.Socket
	for _, s := range sockets {
		msgs, err := c.nl.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(sockDiagByFamily), Flags: netlink.Request},
			Data:   MarshalLookup(s, info),
		})
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESTALE) {
			continue // gone, or its addresses now name another socket
		}
		if err != nil {
			return nil, fmt.Errorf("look up TCP socket %s-%s: %w", s.Local, s.Remote, err)
		}
		for _, m := range msgs {
			s, err := ParseMessage(m.Data)
			if err != nil {
				return nil, err
			}
			if states&StatesOf(s.State) != 0 {
				found = append(found, s)
			}
		}
	}
	return found, nil
}

const sockDiagProtocol = unix.NETLINK_SOCK_DIAG
