package nftgate

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// errMarked reports a listener whose socket already carries a mark of its
// own: a tied gate would overwrite it.
var errMarked = errors.New("the listening socket has a mark of its own (SO_MARK)")

// tieable reports why the gate can't be tied to socks, or nil when it can:
// every socket carries no mark, or ours, and takes SO_MARK. It writes each
// socket's mark back unchanged, which the kernel skips, to learn whether
// setting it works: MPTCP sockets take SO_MARK, and pass it to their TCP
// subflow listener, only on newer kernels (5.14 here).
func tieable(socks []*os.File) error {
	if len(socks) == 0 {
		return errors.New("no listening socket to mark")
	}
	for _, f := range socks {
		mark, err := sockoptInt(f, unix.SO_MARK)
		if err != nil {
			return err
		}
		if mark != 0 && mark != SocketMark {
			return fmt.Errorf("%w: %#x", errMarked, mark)
		}
		if err := setSockoptInt(f, unix.SO_MARK, mark); err != nil {
			return err
		}
	}
	return nil
}

// markedAny reports whether one of socks carries SocketMark. A socket
// that can't be read counts as unmarked.
func markedAny(socks []*os.File) bool {
	for _, f := range socks {
		if mark, err := sockoptInt(f, unix.SO_MARK); err == nil && mark == SocketMark {
			return true
		}
	}
	return false
}

// setMarks sets SO_MARK to to on each of socks whose mark is from.
func setMarks(socks []*os.File, from, to int) error {
	var errs []error
	for _, f := range socks {
		mark, err := sockoptInt(f, unix.SO_MARK)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if mark == from {
			errs = append(errs, setSockoptInt(f, unix.SO_MARK, to))
		}
	}
	return errors.Join(errs...)
}

func sockoptInt(f *os.File, opt int) (int, error) {
	var v int
	var serr error
	err := control(f, func(fd int) { v, serr = unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt) })
	if err == nil && serr != nil {
		err = os.NewSyscallError("getsockopt", serr)
	}
	return v, err
}

func setSockoptInt(f *os.File, opt, v int) error {
	var serr error
	err := control(f, func(fd int) { serr = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, v) })
	if err == nil && serr != nil {
		err = os.NewSyscallError("setsockopt SO_MARK", serr)
	}
	return err
}

func control(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("reach socket: %w", err)
	}
	if err := rc.Control(func(fd uintptr) { fn(int(fd)) }); err != nil {
		return fmt.Errorf("reach socket: %w", err)
	}
	return nil
}
