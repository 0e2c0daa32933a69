package benchmark

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine describes where a run happened.
type Machine struct {
	CPU      string // model name
	Cores    int    // logical CPUs
	MemoryMB int64  // total memory
	Kernel   string // uname -sr
	Go       string // the Go version the bench was built with
	Revision string // the VCS revision the bench was built from, if known
}

// ThisMachine describes the machine the caller runs on. A part it cannot
// read is left empty (or zero), not guessed.
func ThisMachine() Machine {
	m := Machine{CPU: cpuModel(), Cores: runtime.NumCPU(), MemoryMB: memTotalMB(),
		Kernel: kernel(), Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				m.Revision = s.Value + m.Revision
			case "vcs.modified":
				if s.Value == "true" {
					m.Revision += " (modified)"
				}
			}
		}
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file whose key is key.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func cpuModel() string { return procField("/proc/cpuinfo", "model name") }

func memTotalMB() int64 {
	var kb int64
	fmt.Sscanf(procField("/proc/meminfo", "MemTotal"), "%d", &kb)
	return kb / 1024
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) +
		" " + unix.ByteSliceToString(u.Machine[:])
}

// Markdown lists the machine as Markdown bullet lines.
func (m Machine) Markdown() string {
	return fmt.Sprintf("- CPU: %s, %d logical cores\n- Memory: %d MiB\n- Kernel: %s\n- Go: %s\n- sockdrain revision: %s\n",
		orUnknown(m.CPU), m.Cores, m.MemoryMB, orUnknown(m.Kernel), m.Go, orUnknown(m.Revision))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
