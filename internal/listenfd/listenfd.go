// Package listenfd hands listening sockets to a server by the systemd
// socket-activation convention (sd_listen_fds(3)): the sockets are file
// descriptors 3, 4, ..., and the environment says how many there are
// (LISTEN_FDS), which process they are meant for (LISTEN_PID) and what they
// are called (LISTEN_FDNAMES).
//
// LISTEN_PID must be the server's own process ID, which is not known before
// the server is started. systemd sets it in the forked child just before
// exec; Go cannot run code between fork and exec. So Command starts this
// very program again as a shim, with the sockets in place and ShimEnv set;
// the shim, through RunShim at the top of main, sets LISTEN_PID to its own
// pid and execs the server, which keeps that pid.
//
// Listen makes the sockets; Files is the server's side.
package listenfd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The variables of the convention.
const (
	EnvFDs     = "LISTEN_FDS"
	EnvPID     = "LISTEN_PID"
	EnvFDNames = "LISTEN_FDNAMES"
	// ShimEnv marks a process started by Command as the shim. Its value
	// is the path of the server to exec.
	ShimEnv = "SOCKDRAIN_LISTENFD_EXEC"
)

// FirstFD is the descriptor of the first socket, after stdin, stdout and
// stderr.
const FirstFD = 3

// ErrNoSockets reports a process that was not given sockets by the
// convention: LISTEN_FDS is unset, or LISTEN_PID names another process.
var ErrNoSockets = errors.New("no sockets passed by LISTEN_FDS")

// Command returns a command that runs the program at path, with argv as
// its arguments (argv[0] included), given files as descriptors 3, 4, ...
// and the convention's variables, LISTEN_PID included. It starts shim (this
// program, as os.Executable returns it) which must call RunShim first
// thing. The command runs in its own process group, so that a terminal's
// signals reach it only through whoever forwards them.
func Command(shim string, files []*os.File, name, path string, argv []string) *exec.Cmd {
	cmd := exec.Command(shim, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.ExtraFiles = files
	cmd.Env = append(Environ(os.Environ(), len(files), name), ShimEnv+"="+path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Environ returns env without any variable of the convention or ShimEnv,
// plus LISTEN_FDS=n and LISTEN_FDNAMES naming every socket name. The shim
// adds LISTEN_PID.
func Environ(env []string, n int, name string) []string {
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == EnvFDs || k == EnvPID || k == EnvFDNames || k == ShimEnv
	})
	names := slices.Repeat([]string{name}, n)
	return append(env, EnvFDs+"="+strconv.Itoa(n), EnvFDNames+"="+strings.Join(names, ":"))
}

// ValidName reports whether name can name a socket in LISTEN_FDNAMES: at
// most 255 printable ASCII characters, without ':'.
func ValidName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("socket name %q: want 1 to 255 characters", name)
	}
	for _, r := range name {
		if r <= ' ' || r > '~' || r == ':' {
			return fmt.Errorf("socket name %q: want printable ASCII without spaces or ':'", name)
		}
	}
	return nil
}
