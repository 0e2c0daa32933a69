package sockdrain

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/sockdrain/sockdrain/internal/arrivals"
	"github.com/sockdrain/sockdrain/internal/inetdiag"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// On Linux, sockets are observed through inet_diag in the target's network
// namespace, and owners are found through /proc. The gates are in
// internal/backend.

// syncookies is the namespace's tcp_syncookies, which decides where auto
// tries the gates that cannot see TCP flags.
func syncookies(ns namespace) string {
	var b []byte
	ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/sys/net/ipv4/tcp_syncookies")
		return err
	})
	return strings.TrimSpace(string(b))
}

type inetDiagSource struct {
	conn   *inetdiag.Conn
	nsPath string
}

func openSource(nsPath string) (source, error) {
	ns, err := openNetNS(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	conn, err := inetdiag.Dial(dialFD(ns))
	if err != nil {
		return nil, err
	}
	return &inetDiagSource{conn: conn, nsPath: nsPath}, nil
}

// dialFD is the namespace to open a netlink socket in: -1, for none, when
// it is our own, so observing needs no CAP_SYS_ADMIN there.
func dialFD(ns *netns.NS) int {
	if ns.Own() {
		return -1
	}
	return ns.FD()
}

func openNamespace(path string) (namespace, error) {
	ns, err := openNetNS(path)
	if err != nil {
		return nil, err // not a nil *netns.NS in a non-nil interface
	}
	return ns, nil
}

func openNetNS(path string) (*netns.NS, error) {
	ns, err := netns.Open(path)
	if errors.Is(err, netns.ErrNotNetNS) || (path != "" && errors.Is(err, fs.ErrNotExist)) {
		return nil, inputError{err}
	}
	return ns, err
}

func (s *inetDiagSource) sockets(port uint16) ([]observe.Socket, error) {
	return s.conn.Sockets(inetdiag.Request{Family: inetdiag.AnyFamily, Port: port, States: inetdiag.DrainStates, Info: true})
}

// withoutActivity is sockets without each socket's tcp_info, which the
// kernel fills in under the socket's lock: a drain skips it while the
// server still empties its backlog, when nothing can be idle yet.
func (s *inetDiagSource) withoutActivity(port uint16) ([]observe.Socket, error) {
	return s.conn.Sockets(inetdiag.Request{Family: inetdiag.AnyFamily, Port: port, States: inetdiag.DrainStates})
}

// listening dumps only the listening sockets on port: the kernel walks its
// listening hash and skips the established one, whose size is the host's.
func (s *inetDiagSource) listening(port uint16) ([]observe.Socket, error) {
	return s.conn.Sockets(inetdiag.Request{Family: inetdiag.AnyFamily, Port: port, States: inetdiag.StatesOf(observe.Listen)})
}

// lookup asks for each of known again, by its addresses and cookie, and
// returns those still there: one question each to the kernel, which finds
// the socket in its hash tables, where a dump walks every socket of the
// host.
func (s *inetDiagSource) lookup(known []observe.Socket, activity bool) ([]observe.Socket, error) {
	return s.conn.Lookup(known, inetdiag.DrainStates, activity)
}

// watchArrivals counts the connections that arrive on port in the
// source's namespace from now on (see package arrivals).
func (s *inetDiagSource) watchArrivals(port uint16) (counter, error) {
	ns, err := openNetNS(s.nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	ino, err := ns.Inode()
	if err != nil {
		return nil, err
	}
	return arrivals.Watch(ino, port)
}

// watchDestroyed subscribes to the kernel's TCP destroy events in the
// source's namespace, filtered to port.
func (s *inetDiagSource) watchDestroyed(port uint16) (<-chan struct{}, func(), error) {
	ns, err := openNetNS(s.nsPath)
	if err != nil {
		return nil, nil, err
	}
	defer ns.Close()
	d, err := inetdiag.SubscribeDestroyed(dialFD(ns), port)
	if err != nil {
		return nil, nil, err
	}
	events := make(chan struct{}, 1)
	go forwardDestroyed(d, events)
	return events, func() { d.Close() }, nil
}

// forwardDestroyed signals events, without blocking, each time sockets on
// the port are freed or reports of them are lost, until d is closed or
// fails; then it closes events.
func forwardDestroyed(d interface {
	Receive() ([]observe.Socket, error)
}, events chan<- struct{}) {
	defer close(events)
	for {
		gone, err := d.Receive()
		if err != nil && !errors.Is(err, inetdiag.ErrOverrun) {
			return
		}
		if len(gone) > 0 || err != nil {
			select {
			case events <- struct{}{}:
			default:
			}
		}
	}
}

func (s *inetDiagSource) pids(inodes []uint64) ([]int, error) { return sockfd.PIDs(inodes) }

func (s *inetDiagSource) Close() error { return s.conn.Close() }

// runDir holds the locks of running drains.
const runDir = "/run/sockdrain"

// grabSockets duplicates one descriptor of each of l's sockets out of a
// process holding it, and returns the pids of those processes: with pid,
// pid alone; without, only the first holder found of each socket, as the
// search stops there (see ownerPIDs). A socket no process lets us take is
// left out: gates that need it then say so.
func grabSockets(l Listener, pid int) ([]*os.File, []int, error) {
	var first map[uint64]sockfd.Holder
	if pid != 0 {
		first = map[uint64]sockfd.Holder{}
		found, _ := sockfd.HoldersIn([]int{pid}, l.Inodes)
		for ino, hs := range found {
			first[ino] = hs[0]
		}
	} else {
		var err error
		if first, err = sockfd.FirstHolders(l.Inodes); err != nil {
			return nil, nil, err
		}
	}
	var files []*os.File
	var pids []int
	for _, ino := range l.Inodes {
		h, ok := first[ino]
		if !ok {
			continue
		}
		pids = append(pids, h.PID)
		if f, err := sockfd.Dup(h.PID, h.FD); err == nil {
			files = append(files, f)
		}
	}
	if pid != 0 && len(files) == 0 {
		return files, nil, invalidf("--pid %d does not hold a listening socket of %s", pid, l.Listen)
	}
	slices.Sort(pids)
	return files, slices.Compact(pids), nil
}

// grabIn is grabSockets looking only at the processes pids: one walk of
// their descriptors, not the host's.
func grabIn(l Listener, pids []int) []*os.File {
	var files []*os.File
	holders, _ := sockfd.HoldersIn(pids, l.Inodes)
	for _, ino := range l.Inodes {
		if hs := holders[ino]; len(hs) > 0 {
			if f, err := sockfd.Dup(hs[0].PID, hs[0].FD); err == nil {
				files = append(files, f)
			}
		}
	}
	return files
}

// ownerPIDs are all the processes holding the listening sockets of s,
// or pid alone when it is set. The session's own duplicates do not count.
func ownerPIDs(s *session, pid int) ([]int, error) {
	if pid != 0 {
		return []int{pid}, nil
	}
	holders, err := sockfd.Holders(s.inodes())
	if err != nil {
		return nil, err
	}
	// Our own duplicates are no server. Their descriptors are read with
	// sockfd.Control: Fd would make the server's listener blocking, as a
	// duplicate shares its open file description.
	ours := map[int]bool{}
	for _, gl := range s.gls {
		for _, f := range gl.Sockets {
			sockfd.Control(f, func(fd int) error { ours[fd] = true; return nil })
		}
	}
	pids := []int{}
	for _, hs := range holders {
		for _, h := range hs {
			if h.PID != os.Getpid() || !ours[h.FD] {
				pids = append(pids, h.PID)
			}
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}
