package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sockdrain/sockdrain/internal/inetdiag"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// TestDrainOpensNoNetworkSocket looks at a running drain's socket fds, in
// its own namespace and the target's (it enters the target's on threads):
// none may be a listening TCP socket, on any port, nor appear in the TCP
// or UDP tables at all. Its sockets are netlink and, for a moment, the
// probe connection; it lets go of its duplicates of the server's listening
// sockets once the gate is armed, so they count here too. The same check on this test process, which holds a
// listener, must find it.
func TestDrainOpensNoNetworkSocket(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
	nstest.Dial(t, ns, ln.Addr().String()) // queued: the drain waits on it
	for _, backend := range gateNames {
		t.Run(backend, func(t *testing.T) {
			p := startCLI(t, "drain", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--backend", backend, "--json", "--timeout", "20s")
			p.waitPhase(t, "gated")
			host, err := netns.Open(fmt.Sprintf("/proc/%d/ns/net", p.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			defer host.Close()
			inodes := socketInodes(t, p.cmd.Process.Pid)
			if len(inodes) == 0 {
				t.Fatal("the drain holds no socket at all; the check would see nothing")
			}
			for _, n := range []*netns.NS{host, ns} {
				if found := networkSockets(t, n, inodes); len(found) > 0 {
					t.Errorf("the drain holds network sockets in %s: %q", n.Path(), found)
				}
			}
			p.kill(t)
			resume(t, ns, ln.Addr().String(), backend)
		})
	}
	if found := networkSockets(t, ns, socketInodes(t, os.Getpid())); len(found) == 0 {
		t.Error("the check does not see this process's own listener")
	}
}

// socketInodes returns the inodes of the sockets process pid holds.
func socketInodes(t *testing.T, pid int) map[uint64]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[uint64]bool{}
	for _, e := range ents {
		target, _ := os.Readlink(dir + "/" + e.Name())
		if s, ok := strings.CutPrefix(target, "socket:["); ok {
			ino, _ := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
			inodes[ino] = true
		}
	}
	return inodes
}

// networkSockets describes the sockets among inodes that listen on TCP in
// ns (from inet_diag), or have a TCP or UDP table entry there.
func networkSockets(t *testing.T, ns *netns.NS, inodes map[uint64]bool) []string {
	t.Helper()
	conn, err := inetdiag.Dial(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var found []string
	for _, f := range []inetdiag.Family{inetdiag.IPv4, inetdiag.IPv6} {
		socks, err := conn.Sockets(inetdiag.Request{Family: f, States: inetdiag.StatesOf(observe.Listen)})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range socks {
			if inodes[s.Inode] {
				found = append(found, fmt.Sprintf("TCP listener %s", s.Local))
			}
		}
	}
	return append(found, tableEntries(t, ns, inodes)...)
}

// tableEntries describes the entries of ns's TCP and UDP tables, v4 and
// v6, whose socket is one of inodes.
func tableEntries(t *testing.T, ns *netns.NS, inodes map[uint64]bool) []string {
	t.Helper()
	var found []string
	err := ns.Do(func() error {
		for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + table)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				f := strings.Fields(line)
				if len(f) < 10 {
					continue
				}
				if ino, _ := strconv.ParseUint(f[9], 10, 64); inodes[ino] {
					found = append(found, fmt.Sprintf("%s local %s state %s", table, f[1], f[3]))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
