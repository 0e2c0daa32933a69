package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// TestKillNineDuringArming covers a drain killed while it arms its gate.
// A kill there cannot be timed from outside (arming takes well under a
// millisecond between its steps), so the test builds what such a kill
// leaves in the kernel: the objects pinned so far (everything unpinned
// dies with the process). The BPF gates pin their link or flag last, so a
// directory without it refuses nothing. nftables arms in one netlink
// batch: a kill leaves nothing or the whole gate, the cases of
// TestKillNineLeavesGateClosedUntilResume.
func TestKillNineDuringArming(t *testing.T) {
	for _, c := range []struct {
		backend string
		pins    []string // pinned before the kill, in the gate's order
	}{
		{"sklookup", nil},
		{"sklookup", []string{"config"}},
		{"sklookup", []string{"config", "listeners"}},
		{"reuseport", nil},
		{"reuseport", []string{"prog"}},
	} {
		t.Run(c.backend+"/"+strings.Join(append([]string{"dir"}, c.pins...), "+"), func(t *testing.T) {
			testKilledWhileArming(t, c.backend, c.pins)
		})
	}
}

func testKilledWhileArming(t *testing.T, backend string, pins []string) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort)
	serveEcho(ln)
	addr := ln.Addr().String()
	before := snapshot(t, ns)
	key := backend + "_" + gateKey(t, ns, addr)
	t.Cleanup(func() { bpffs.Remove(key) })

	leavePins(t, key, pins)
	requireServed(t, ns, addr)
	if got := statusGates(t, ns, addr); len(got) != 0 {
		t.Errorf("status shows gates %q for a gate that was never armed", got)
	}
	resume(t, ns, addr, "")
	requireSnapshot(t, ns, before)

	leavePins(t, key, pins)
	code, _, stderr := runCLI(t, "drain", "--listen", addr, "--netns", ns.Path(), "--backend", backend, "--timeout", "5s")
	if code != exitOK {
		t.Fatalf("drain over the leftovers: exit %d: %s", code, stderr)
	}
	requireRefused(t, ns, addr)
	resume(t, ns, addr, backend)
	requireServed(t, ns, addr)
	requireSnapshot(t, ns, before)
}

// gateKey is the key of the gates on addr in ns, as gate.Listener.Key.
func gateKey(t *testing.T, ns *netns.NS, addr string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(ns.Path(), &st); err != nil {
		t.Fatal(err)
	}
	return gate.Listener{NetNSInode: st.Ino, Addr: netip.MustParseAddrPort(addr)}.Key()
}

// leavePins makes key's pin directory holding maps pinned as names, as a
// process killed between its pins would leave it. Only the names matter
// to a gate looking for its pins.
func leavePins(t *testing.T, key string, names []string) {
	t.Helper()
	dir, err := bpffs.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "sd_test_" + name, Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Pin(filepath.Join(dir, name))
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
