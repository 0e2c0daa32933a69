package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
)

// A process may hold only so many descriptors, and the bench may not raise
// the hard limit (no CAP_SYS_RESOURCE in a container). So large socket
// populations are held by children: each one is this binary run as
// `hold-pairs NETNS ADDR N` with the listener as fd 3. It connects N pairs
// in NETNS, accepting each from fd 3, prints "ready", and holds them until
// its stdin closes.

// heldPairs are connected pairs held by child processes.
type heldPairs struct {
	children []*exec.Cmd
	stdins   []io.Closer
}

// holdPairs makes n pairs to ln at addr in ns, in children of at most
// perChild pairs each.
func holdPairs(ns *netns.NS, ln int, addr netip.AddrPort, n int) (*heldPairs, error) {
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, err
	}
	perChild := max(int(limit)/2-100, 1)
	h := &heldPairs{}
	for left := n; left > 0; left -= perChild {
		if err := h.start(ns, ln, addr, min(left, perChild)); err != nil {
			h.close()
			return nil, err
		}
	}
	return h, nil
}

func (h *heldPairs) start(ns *netns.NS, ln int, addr netip.AddrPort, n int) error {
	dup, err := unix.Dup(ln)
	if err != nil {
		return os.NewSyscallError("dup", err)
	}
	lf := os.NewFile(uintptr(dup), "listener")
	defer lf.Close()
	cmd := exec.Command("/proc/self/exe", holderCommand, ns.Path(), addr.String(), strconv.Itoa(n))
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start socket holder: %w", err)
	}
	h.children, h.stdins = append(h.children, cmd), append(h.stdins, stdin)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		return fmt.Errorf("socket holder for %d pairs failed: %q %v", n, line, err)
	}
	return nil
}

// close ends the children, which closes their sockets.
func (h *heldPairs) close() error {
	var errs []error
	for i, c := range h.children {
		h.stdins[i].Close()
		errs = append(errs, c.Wait())
	}
	h.children, h.stdins = nil, nil
	return errors.Join(errs...)
}

// runHolder is the child's side.
func runHolder(args []string) int {
	if err := holdMain(args); err != nil {
		fmt.Fprintln(os.Stderr, "sockdrain-bench hold-pairs:", err)
		return 1
	}
	return 0
}

func holdMain(args []string) error {
	if len(args) != 3 {
		return errors.New("want NETNS ADDR N")
	}
	addr, err := netip.ParseAddrPort(args[1])
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	ns, err := netns.Open(args[0])
	if err != nil {
		return err
	}
	defer ns.Close()
	p, err := connectPairs(ns, 3, addr, n)
	if err != nil {
		return err
	}
	defer p.close()
	fmt.Println("ready")
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}
