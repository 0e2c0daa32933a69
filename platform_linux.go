package sockdrain

import (
	"errors"
	"io/fs"

	"github.com/sockdrain/sockdrain/sockdrain/inetdiag"
	"github.com/sockdrain/sockdrain/sockdrain/netns"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
	"github.com/sockdrain/sockdrain/sockdrain/sockfd"
)

// On Linux, sockets are observed through inet_diag in the target's network
// namespace, and owners found through /proc.

type inetDiagSource struct {
	conn *inetdiag.Conn
}

func openSource(nsPath string) (source, error) {
	ns, err := openNetNS(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	conn, err := inetdiag.Dial(ns.FD())
	if err != nil {
		return nil, err
	}
	return &inetDiagSource{conn: conn}, nil
}

func openNetNS(path string) (*netns.NS, error) {
	ns, err := netns.Open(path)
	if errors.Is(err, netns.ErrNotNetNS) || (path != "" && errors.Is(err, fs.ErrNotExist)) {
		return nil, inputError{err}
	}
	return ns, err
}

func (s *inetDiagSource) sockets(port uint16) ([]observe.Socket, error) {
	var all []observe.Socket
	for _, v6 := range []bool{false, true} {
		ss, err := s.conn.Sockets(inetdiag.Request{IPv6: v6, Port: port, States: inetdiag.DrainStates})
		if err != nil {
			return nil, err
		}
		all = append(all, ss...)
	}
	return all, nil
}

func (s *inetDiagSource) pids(inodes []uint64) ([]int, error) { return sockfd.PIDs(inodes) }

func (s *inetDiagSource) Close() error { return s.conn.Close() }
