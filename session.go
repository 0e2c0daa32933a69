package sockdrain

import (
	"errors"
	"os"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// namespace is where a target's listeners live: a Linux network namespace,
// or the host's one stack elsewhere.
type namespace interface {
	// Do runs fn where sockets it creates belong to the namespace.
	Do(fn func() error) error
	// File is the namespace as a gate.Listener carries it; nil for the host.
	File() *os.File
	// Inode tells namespaces apart in the names of pins and rules.
	Inode() (uint64, error)
	Close() error
}

// session is what a drain or a resume holds open: the target's namespace,
// its observer, and duplicates of its listening sockets.
type session struct {
	ns        namespace
	obs       *Observer
	listeners []Listener
	gls       []gate.Listener
}

// openSession finds the listeners serving t and takes their sockets with
// grab. With allowNone, a target without listeners is not an error. It
// looks only at the listening sockets.
func openSession(t Target, grab func(Listener) ([]*os.File, error), allowNone bool) (_ *session, err error) {
	s := &session{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.ns, err = openNamespace(t.NetNS); err != nil {
		return nil, err
	}
	if s.obs, err = NewObserver(t); err != nil {
		return nil, err
	}
	s.listeners, err = s.obs.lookup()
	if errors.Is(err, ErrNoListener) && allowNone {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	ino, err := s.ns.Inode()
	if err != nil {
		return nil, err
	}
	for _, l := range s.listeners {
		socks, err := grab(l)
		s.gls = append(s.gls, gate.Listener{NetNS: s.ns.File(), NetNSInode: ino, Addr: l.Listen, Sockets: socks})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// releaseSockets closes the session's duplicates of the listening sockets.
func (s *session) releaseSockets() {
	for i := range s.gls {
		for _, f := range s.gls[i].Sockets {
			f.Close()
		}
		s.gls[i].Sockets = nil
	}
}

func (s *session) close() {
	s.releaseSockets()
	if s.obs != nil {
		s.obs.Close()
	}
	if s.ns != nil {
		s.ns.Close()
	}
}

// inodes are the inodes (on FreeBSD, the kernel addresses) of the
// listening sockets of s.
func (s *session) inodes() []uint64 {
	var inodes []uint64
	for _, l := range s.listeners {
		inodes = append(inodes, l.Inodes...)
	}
	return inodes
}

// lock takes the lock of port in the session's namespace.
func (s *session) lock(port uint16) (*portLock, error) {
	ino, err := s.ns.Inode()
	if err != nil {
		return nil, err
	}
	return lockPort(ino, port)
}

// grabFrom takes a listener's sockets from processes that hold them, the
// first found of each (see grabSockets); pid, if set, must hold them. It
// adds those processes to owners, if not nil.
func grabFrom(pid int, owners *[]int) func(Listener) ([]*os.File, error) {
	return func(l Listener) ([]*os.File, error) {
		socks, pids, err := grabSockets(l, pid)
		if owners != nil {
			*owners = append(*owners, pids...)
		}
		return socks, err
	}
}
