package pcblist

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// Read returns the raw bytes of net.inet.tcp.pcblist.
func Read() ([]byte, error) {
	b, err := unix.SysctlRaw("net.inet.tcp.pcblist")
	if err != nil {
		return nil, fmt.Errorf("read TCP socket list: %w", os.NewSyscallError("sysctl net.inet.tcp.pcblist", err))
	}
	return b, nil
}

// Query returns the TCP sockets whose local port is port, from a list that
// did not change while it was read (see Consistent).
func Query(port uint16) ([]observe.Socket, error) {
	rs, err := Consistent(Read)
	if err != nil {
		return nil, err
	}
	return Sockets(ByLocalPort(rs, port)), nil
}

// PIDs returns the processes that hold any of the sockets, named by their
// kernel addresses (Record.KSocket, observe.Socket.Inode), open. It reads
// kern.file, which lists only the processes the caller may see.
func PIDs(ksockets []uint64) ([]int, error) {
	if len(ksockets) == 0 {
		return []int{}, nil
	}
	b, err := unix.SysctlRaw("kern.file")
	if err != nil {
		return nil, fmt.Errorf("read open files: %w", os.NewSyscallError("sysctl kern.file", err))
	}
	fs, err := ParseFiles(b)
	if err != nil {
		return nil, err
	}
	return Owners(fs, ksockets), nil
}

// Queue is a listening socket's queue state, as the socket itself reports it.
type Queue struct {
	// Len is the complete queue: connections ready for accept(2).
	Len int
	// IncLen is the incomplete queue.
	IncLen int
	// Limit is the backlog.
	Limit int
}

// ListenQueue asks the listening socket fd for its queue lengths with
// SO_LISTENQLEN, SO_LISTENINCQLEN and SO_LISTENQLIMIT.
func ListenQueue(fd int) (Queue, error) {
	var q Queue
	for _, o := range []struct {
		opt  int
		name string
		dst  *int
	}{
		{unix.SO_LISTENQLEN, "SO_LISTENQLEN", &q.Len},
		{unix.SO_LISTENINCQLEN, "SO_LISTENINCQLEN", &q.IncLen},
		{unix.SO_LISTENQLIMIT, "SO_LISTENQLIMIT", &q.Limit},
	} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o.opt)
		if err != nil {
			return Queue{}, fmt.Errorf("read listen queue of fd %d: %w", fd, os.NewSyscallError("getsockopt "+o.name, err))
		}
		*o.dst = v
	}
	return q, nil
}
