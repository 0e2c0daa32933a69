package sockdrain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
	"golang.org/x/sys/unix"
)

// shutdownCloser ends idle connections of the server processes pids by
// taking each one with pidfd_getfd and shutting it down: the client gets a
// FIN, and the server reads EOF and closes, as when a client leaves.
type shutdownCloser struct{ pids []int }

// newIdleCloser checks that this process may take sockets from the server
// (pidfd_getfd: Linux 5.6, and ptrace access to it) by taking the listening
// socket ls once, and returns a closer for the server's connections.
func newIdleCloser(pids []int, ls []Listener) (idleCloser, error) {
	var inodes []uint64
	for _, l := range ls {
		inodes = append(inodes, l.Inodes...)
	}
	holders, readErr := sockfd.HoldersIn(pids, inodes)
	for _, hs := range holders {
		if len(hs) == 0 {
			continue
		}
		if err := sockfd.With(hs[0].PID, hs[0].FD, func(int) error { return nil }); err != nil {
			return nil, closeIdleError(err)
		}
		return shutdownCloser{pids: pids}, nil
	}
	if readErr == nil {
		// Without ptrace access, /proc/PID/fd of the server cannot be
		// read, so no holder of the listener was found at all.
		readErr = fmt.Errorf("no process holding the listening socket could be read: %w", fs.ErrPermission)
	}
	return nil, closeIdleError(readErr)
}

func closeIdleError(err error) error {
	const needs = "close idle connections needs pidfd_getfd (Linux 5.6) and ptrace access to the server (CAP_SYS_PTRACE)"
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES), errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: not permitted: %w", needs, err)
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%w: %s: %w", ErrNotSupported, needs, err)
	}
	return fmt.Errorf("%s: %w", needs, err)
}

func (c shutdownCloser) closeIdle(conns []observe.Socket, idle time.Duration) (closed, crossed int, err error) {
	inodes := make([]uint64, 0, len(conns))
	for _, s := range conns {
		inodes = append(inodes, s.Inode)
	}
	holders, _ := sockfd.HoldersIn(c.pids, inodes) // a connection not found is left to the next poll
	for _, s := range conns {
		hs := holders[s.Inode]
		if len(hs) == 0 {
			continue // closed, or handed to another process, since the poll
		}
		var shut, late bool
		err := sockfd.With(hs[0].PID, hs[0].FD, func(fd int) (err error) {
			shut, late, err = shutdownIfIdle(fd, idle)
			return err
		})
		if errors.Is(err, unix.EBADF) || errors.Is(err, unix.ESRCH) {
			continue // the server closed it, or exited, meanwhile
		}
		if err != nil {
			return closed, crossed, err
		}
		if shut {
			closed++
		}
		if late {
			crossed++
		}
	}
	return closed, crossed, nil
}

// shutdownIfIdle shuts down the connection fd, a duplicate of the server's
// descriptor, if it is still idle: checked on the socket itself, just
// before, so a request that arrived since the poll spares it. late reports
// data that arrived in the instant between the check and the shutdown.
func shutdownIfIdle(fd int, idle time.Duration) (shut, late bool, err error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false, false, os.NewSyscallError("getsockopt TCP_INFO", err)
	}
	unread, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return false, false, os.NewSyscallError("ioctl SIOCINQ", err)
	}
	unsent, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		return false, false, os.NewSyscallError("ioctl SIOCOUTQ", err)
	}
	s := observe.Socket{State: observe.State(info.State), Inode: 1, Activity: true,
		RecvQ: uint32(unread), SendQ: uint32(unsent),
		SinceRecv: time.Duration(info.Last_data_recv) * time.Millisecond,
		SinceSent: time.Duration(info.Last_data_sent) * time.Millisecond}
	if !s.IdleFor(idle) {
		return false, false, nil
	}
	if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil {
		return false, false, os.NewSyscallError("shutdown", err)
	}
	unread, err = unix.IoctlGetInt(fd, unix.SIOCINQ)
	return true, err == nil && unread > 0, nil
}

// probeCloseIdle checks that this kernel has pidfd_getfd, by taking a
// descriptor of our own process.
func probeCloseIdle() error {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return closeIdleError(os.NewSyscallError("pidfd_open", err))
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, 0, 0)
	if err != nil {
		return closeIdleError(os.NewSyscallError("pidfd_getfd", err))
	}
	return unix.Close(fd)
}
