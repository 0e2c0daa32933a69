package sockdrain

import "time"

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
	Close() error
}
