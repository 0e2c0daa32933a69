package sockdrain

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// signalled watches processes with kill(pid, 0). FreeBSD's process
// descriptors only come from pdfork, so another process's exit is seen as
// its pid going away: a zombie not yet reaped counts as running.
type signalled []int

func watchServers(pids []int) (servers, error) { return signalled(pids), nil }

func (p signalled) exited(wait time.Duration) bool {
	if len(p) == 0 {
		return false // nobody known to watch
	}
	deadline := time.Now().Add(wait)
	for {
		if p.allGone() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p signalled) allGone() bool {
	for _, pid := range p {
		if !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			return false
		}
	}
	return true
}

func (signalled) Close() error { return nil }
