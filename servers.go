package sockdrain

import (
	"slices"
	"syscall"
	"time"
)

// serverExitWait is how long a drain whose listener vanished waits for the
// processes that held it to exit. A process closes its files before it
// exits, so a crash first looks like a listener closing.
const serverExitWait = 100 * time.Millisecond

// servers are the processes that held a target's listening sockets when a
// drain began. They tell a server that exited, as in a crash, from one that
// closed its listener and kept running.
type servers interface {
	// exited reports whether every process has exited, waiting up to wait
	// for the last of them.
	exited(wait time.Duration) bool
	// signal sends sig to the server's main processes: those whose parent
	// is not one of the servers, such as the nginx master.
	signal(sig syscall.Signal) error
	Close() error
}

// mains returns the pids in pids whose parent, by parentOf, is not in
// pids. A process whose parent cannot be read is left out.
func mains(pids []int, parentOf func(pid int) (int, error)) []int {
	var ms []int
	for _, pid := range pids {
		ppid, err := parentOf(pid)
		if err == nil && !slices.Contains(pids, ppid) {
			ms = append(ms, pid)
		}
	}
	return ms
}
