package sockdrain

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/gate/nftables"
	"github.com/sockdrain/sockdrain/sockdrain/gate/reuseport"
	"github.com/sockdrain/sockdrain/sockdrain/gate/sklookup"
	"github.com/sockdrain/sockdrain/sockdrain/inetdiag"
	"github.com/sockdrain/sockdrain/sockdrain/netns"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
	"github.com/sockdrain/sockdrain/sockdrain/sockfd"
)

// On Linux, sockets are observed through inet_diag in the target's network
// namespace, owners are found through /proc, and the gates are tried in
// this order by --backend auto.
var backends = []backend{
	{
		name: "reuseport", probe: reuseport.Probe, needsSockets: true,
		open: func(l gate.Listener) (gate.Gate, error) { return reuseport.Open(l) },
		why:  "an SO_REUSEPORT listener: refuses only pure SYNs, and dies with the socket",
	},
	{
		name: "sklookup", probe: sklookup.Probe,
		open: func(l gate.Listener) (gate.Gate, error) { return sklookup.Open(l) },
		why:  "works on any listener and opens by itself when the listener closes",
	},
	{
		name: "nftables", probe: nftgate.Probe,
		open: func(l gate.Listener) (gate.Gate, error) { return nftgate.Open(l) },
		why:  "refuses only pure SYNs, needs no BPF; stays until resume",
	},
}

// autoOrder is the order --backend auto tries the gates in. sklookup cannot
// see TCP flags, so where every handshake may end in a SYN cookie
// (tcp_syncookies=2) it goes after nftables.
func autoOrder(ns *netns.NS) []backend {
	if syncookies(ns) != "2" {
		return backends
	}
	return []backend{backends[0], backends[2], backends[1]}
}

func syncookies(ns *netns.NS) string {
	var b []byte
	ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/sys/net/ipv4/tcp_syncookies")
		return err
	})
	return strings.TrimSpace(string(b))
}

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
