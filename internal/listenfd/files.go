package listenfd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Files returns the sockets passed to this process by the convention, as
// sd_listen_fds(3) does: only when LISTEN_PID is this process's pid. It
// sets close-on-exec on them and unsets the variables, so that children do
// not take the sockets for theirs. Each file is named by LISTEN_FDNAMES,
// or "unknown".
func Files() ([]*os.File, error) {
	defer unsetEnv()
	n, err := count(os.Getenv(EnvPID), os.Getenv(EnvFDs), os.Getpid())
	if err != nil {
		return nil, err
	}
	names := strings.Split(os.Getenv(EnvFDNames), ":")
	files := make([]*os.File, n)
	for i := range files {
		name := "unknown"
		if i < len(names) && names[i] != "" && len(names) == n {
			name = names[i]
		}
		syscall.CloseOnExec(FirstFD + i)
		files[i] = os.NewFile(uintptr(FirstFD+i), name)
	}
	return files, nil
}

// count checks LISTEN_PID against pid and parses LISTEN_FDS.
func count(pidVar, fdsVar string, pid int) (int, error) {
	if fdsVar == "" || pidVar == "" {
		return 0, fmt.Errorf("read %s: %w", EnvFDs, ErrNoSockets)
	}
	if p, err := strconv.Atoi(pidVar); err != nil || p != pid {
		return 0, fmt.Errorf("read %s: %s=%s is not this process (%d): %w", EnvFDs, EnvPID, pidVar, pid, ErrNoSockets)
	}
	n, err := strconv.Atoi(fdsVar)
	if err != nil || n < 0 || n > 1<<16 {
		return 0, fmt.Errorf("read %s=%q: want a count of descriptors", EnvFDs, fdsVar)
	}
	return n, nil
}

func unsetEnv() {
	for _, k := range []string{EnvFDs, EnvPID, EnvFDNames} {
		os.Unsetenv(k)
	}
}
