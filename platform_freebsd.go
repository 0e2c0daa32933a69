package sockdrain

import (
	"fmt"
	"os"
	"slices"

	"github.com/sockdrain/sockdrain/internal/pcblist"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
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

// syncookies is "": FreeBSD's gates all see TCP flags.
func syncookies(namespace) string { return "" }

// hostStack is FreeBSD's one network stack.
type hostStack struct{}

func (hostStack) Do(fn func() error) error { return fn() }
func (hostStack) File() *os.File           { return nil }
func (hostStack) Inode() (uint64, error)   { return 0, nil }
func (hostStack) Close() error             { return nil }

func openNamespace(path string) (namespace, error) {
	if path != "" {
		return nil, invalidf("network namespace %q: FreeBSD has no network namespaces", path)
	}
	return hostStack{}, nil
}

// runDir holds the locks of running drains.
const runDir = "/var/run/sockdrain"

// grabSockets cannot take a socket from another process on FreeBSD, which
// has no pidfd_getfd. It returns the pids that hold l's sockets, and checks
// that pid, if set, is one of them.
func grabSockets(l Listener, pid int) ([]*os.File, []int, error) {
	pids, err := pcblist.PIDs(l.Inodes)
	if err != nil {
		return nil, nil, err
	}
	if pid == 0 {
		return nil, pids, nil
	}
	if !slices.Contains(pids, pid) {
		return nil, nil, invalidf("--pid %d does not hold a listening socket of %s", pid, l.Listen)
	}
	return nil, []int{pid}, nil
}

// grabIn takes nothing: FreeBSD cannot take another process's socket.
func grabIn(Listener, []int) []*os.File { return nil }

// ownerPIDs are the processes holding the listening sockets of s, or pid
// alone when it is set.
func ownerPIDs(s *session, pid int) ([]int, error) {
	if pid != 0 {
		return []int{pid}, nil
	}
	return pcblist.PIDs(s.inodes())
}
