package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain"
)

// Shape of the CPU-measured drain.
const (
	cpuLongLived = 100
	cpuElsewhere = 5_000 // pairs on another port
)

// drainCPU is the CPU a `sockdrain drain` child used while it waited.
type drainCPU struct {
	sockets   int
	wall, cpu time.Duration
	backend   string
}

func (d drainCPU) String() string {
	return fmt.Sprintf("**CPU of a waiting drain:** `sockdrain drain` (exec'd, backend %s) waited %s on %d long-lived connections "+
		"with %d sockets in the netns, then the connections closed and it reported drained. Its utime+stime (rusage of the child): "+
		"%s over %s wall = **%.3f%% of one core** (N=1).",
		d.backend, d.wall.Round(time.Second), cpuLongLived, d.sockets, d.cpu.Round(time.Millisecond), d.wall.Round(time.Millisecond),
		100*d.cpu.Seconds()/d.wall.Seconds())
}

// measureDrainCPU runs a drain that waits for wait on long-lived
// connections, then closes them, and returns the child's CPU time.
func measureDrainCPU(ctx context.Context, cli string, wait time.Duration) (drainCPU, error) {
	ns, err := newNS()
	if err != nil {
		return drainCPU{}, err
	}
	defer ns.Remove()
	target, other, err := targetAndOther(ns)
	if err != nil {
		return drainCPU{}, err
	}
	defer unix.Close(target.fd)
	defer unix.Close(other.fd)
	long, err := connectPairs(ns, target.fd, target.addr, cpuLongLived)
	if err != nil {
		return drainCPU{}, err
	}
	defer long.close()
	rest, err := holdPairs(ns, other.fd, other.addr, cpuElsewhere)
	if err != nil {
		return drainCPU{}, err
	}
	defer rest.close()
	d := drainCPU{sockets: 2 + 2*(cpuLongLived+cpuElsewhere)}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, cli, "drain", "--listen", target.addr.String(), "--netns", ns.Path(),
		"--timeout", (wait + time.Minute).String(), "--json")
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return d, err
	}
	time.Sleep(wait)
	long.close()
	err = cmd.Wait()
	d.wall = time.Since(start)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		d.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	d.backend = backendOf(out.String())
	if err != nil {
		return d, fmt.Errorf("sockdrain drain: %w: %s", err, out.String())
	}
	_, err = sockdrain.Resume(ctx, sockdrain.Target{Addr: target.addr.Addr(), Port: target.addr.Port(), NetNS: ns.Path()})
	return d, err
}

// backendOf finds the backend named in a drain's JSON lines.
func backendOf(out string) string {
	_, rest, ok := strings.Cut(out, `"backend":"`)
	if !ok {
		return "unknown"
	}
	name, _, _ := strings.Cut(rest, `"`)
	return name
}
