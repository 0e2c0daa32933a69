package ipfw

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Probe reports whether ipfw is loaded, enabled and usable by this process.
func Probe() error {
	on, err := unix.SysctlUint32("net.inet.ip.fw.enable")
	if err != nil {
		return fmt.Errorf("probe ipfw: %w (is ipfw.ko loaded?): %w", os.NewSyscallError("sysctl net.inet.ip.fw.enable", err), gate.ErrNotSupported)
	}
	if on == 0 {
		return fmt.Errorf("probe ipfw: net.inet.ip.fw.enable is 0: %w", gate.ErrNotSupported)
	}
	if _, err := execIpfw("-S", "list"); err != nil {
		return fmt.Errorf("probe ipfw: %w: %w", err, gate.ErrNotSupported)
	}
	return nil
}

// Open returns the ipfw gate of l.
func Open(l gate.Listener) (*Gate, error) {
	if err := Probe(); err != nil {
		return nil, err
	}
	return newGate(l, execIpfw)
}

func execIpfw(args ...string) (string, error) {
	cmd := exec.Command("ipfw", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ipfw %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
