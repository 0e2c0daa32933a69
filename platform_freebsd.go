package sockdrain

import (
	"fmt"
	"os"
	"slices"

	"github.com/sockdrain/sockdrain/internal/pcblist"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/gate/ipfw"
	"github.com/sockdrain/sockdrain/sockdrain/gate/pf"
	"github.com/sockdrain/sockdrain/sockdrain/gate/shutdown"
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

// The FreeBSD gates, in the order --backend auto tries them. pf and ipfw
// refuse only SYNs and need no socket; shutdown needs a socket sockdrain
// holds, which only `sockdrain run` gives it, and FreeBSD 10 or older.
var backends = []backend{
	{
		name: "pf", probe: pf.Probe,
		open: func(l gate.Listener) (gate.Gate, error) { return pf.Open(l) },
		why:  "pf is enabled and its main ruleset loads the sockdrain anchor",
	},
	{
		name: "ipfw", probe: ipfw.Probe, open: openIpfw,
		why: "ipfw is loaded",
	},
	{
		name: "shutdown", probe: shutdown.Probe, needsSockets: true,
		open: func(l gate.Listener) (gate.Gate, error) { return shutdown.Open(l) },
		why:  "this kernel still refuses SYNs on a listener after shutdown()",
	},
}

func autoOrder(namespace) []backend { return backends }

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

// ownerPIDs are the processes holding the listening sockets of s, or pid
// alone when it is set.
// grabIn takes nothing: FreeBSD cannot take another process's socket.
func grabIn(Listener, []int) []*os.File { return nil }

func ownerPIDs(s *session, pid int) ([]int, error) {
	if pid != 0 {
		return []int{pid}, nil
	}
	var inodes []uint64
	for _, l := range s.listeners {
		inodes = append(inodes, l.Inodes...)
	}
	return pcblist.PIDs(inodes)
}

func gateWarnings(_ *session, _ backend, gs gates) []string {
	var w []string
	for _, g := range gs {
		switch g := g.(type) {
		case *pf.Gate:
			ws, err := g.Warnings()
			if err != nil {
				ws = []string{fmt.Sprintf("could not check whether pf skips loopback: %v", err)}
			}
			w = append(w, ws...)
		case *ipfwGate:
			if g.pfProblem != "" {
				w = append(w, g.pfProblem)
			}
		}
	}
	return w
}
