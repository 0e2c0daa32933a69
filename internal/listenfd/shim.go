package listenfd

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// RunShim returns at once unless this process was started by Command. Then
// it sets LISTEN_PID to its own pid and replaces itself with the server,
// which keeps the pid, the descriptors and the rest of the environment. If
// the exec fails it exits with status 127, as a shell does.
//
// Call it first thing in main, before anything opens a file.
func RunShim() {
	path, ok := os.LookupEnv(ShimEnv)
	if !ok {
		return
	}
	env := shimEnviron(os.Environ(), os.Getpid())
	err := syscall.Exec(path, os.Args, env)
	fmt.Fprintf(os.Stderr, "sockdrain run: exec %s: %v\n", path, err)
	os.Exit(127)
}

// shimEnviron is env without ShimEnv, with LISTEN_PID=pid.
func shimEnviron(env []string, pid int) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if len(kv) > len(ShimEnv) && kv[:len(ShimEnv)+1] == ShimEnv+"=" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, EnvPID+"="+strconv.Itoa(pid))
}
