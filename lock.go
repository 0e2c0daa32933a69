//go:build linux || freebsd

package sockdrain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// portLock keeps two drains off one port of one namespace. It is an
// flock(2) on a file under runDir, which the kernel releases when its
// holder exits, even by kill -9.
type portLock struct {
	f    *os.File
	path string
}

// lockPort takes the lock of port in the namespace with inode ns, or
// returns ErrBusy naming the process that holds it.
func lockPort(ns uint64, port uint16) (*portLock, error) {
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	path := filepath.Join(runDir, fmt.Sprintf("drain-%d-%d.lock", ns, port))
	for {
		l, err := tryLock(path)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: port %d is being drained by sockdrain (pid %s); wait for that drain, or stop it",
				ErrBusy, port, holder(path))
		}
		if l != nil || err != nil {
			return l, err
		}
	}
}

// tryLock locks the file at path. It returns nil, nil if the file was
// removed by its last holder in the meantime: the caller tries again.
func tryLock(path string) (*portLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil || unix.Stat(path, &now) != nil || held.Ino != now.Ino {
		f.Close()
		return nil, nil
	}
	f.Truncate(0)
	f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	return &portLock{f: f, path: path}, nil
}

func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
		return pid
	}
	return "unknown"
}

// unlock removes the lock file, then lets go of the lock: whoever opened
// the old file meanwhile sees it is gone and tries again.
func (l *portLock) unlock() {
	os.Remove(l.path)
	l.f.Close()
}
