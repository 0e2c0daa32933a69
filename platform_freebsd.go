package sockdrain

import (
	"fmt"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
	"github.com/sockdrain/sockdrain/sockdrain/pcblist"
)

// On FreeBSD, sockets are observed through the net.inet.tcp.pcblist sysctl,
// and owners found through kern.file. An observe.Socket's Inode is the
// kernel address of the socket, which both sysctls report.
//
// FreeBSD has no network namespaces. Its VNET jails have their own stacks,
// but reading another jail's sockets means running inside it; that is not
// done here.

type pcblistSource struct{}

func openSource(nsPath string) (source, error) {
	if nsPath != "" {
		return nil, invalidf("network namespace %q: FreeBSD has no network namespaces", nsPath)
	}
	return pcblistSource{}, nil
}

func (pcblistSource) sockets(port uint16) ([]observe.Socket, error) {
	ss, err := pcblist.Query(port)
	if err != nil {
		return nil, fmt.Errorf("list TCP sockets on port %d: %w", port, err)
	}
	return ss, nil
}

func (pcblistSource) pids(ksockets []uint64) ([]int, error) { return pcblist.PIDs(ksockets) }

func (pcblistSource) Close() error { return nil }
