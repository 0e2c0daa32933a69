package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/nftables"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// kernelState is what sockdrain may leave on the system: the pin
// directories of the namespace's gates, BPF programs host-wide, and the
// namespace's nftables tables. The program count being host-wide, it needs
// test packages run one at a time, as `make test` does (go test -p 1):
// another package's drains would show up here.
type kernelState struct {
	pins  []string
	progs int
	nft   string
}

func snapshot(t *testing.T, ns *netns.NS) kernelState {
	t.Helper()
	all, err := bpffs.List()
	if err != nil {
		t.Fatal(err)
	}
	ino, err := ns.Inode()
	if err != nil {
		t.Fatal(err)
	}
	// A pin's key names its netns inode: pins of other namespaces, left by
	// other runs, are not this test's.
	pins := slices.DeleteFunc(all, func(p string) bool { return !strings.Contains(p, fmt.Sprintf("_%d_", ino)) })
	// A program whose last descriptor or link was just closed lives on
	// until the kernel frees it: the count is read until it holds still
	// for 50ms (1s at most), so a program on its way out, such as the
	// iterator of a drain that just ended, is not counted.
	progs := countPrograms()
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		n := countPrograms()
		if n == progs {
			break
		}
		progs = n
	}
	return kernelState{pins: pins, progs: progs, nft: nftRuleset(t, ns)}
}

// countPrograms counts the host's BPF programs, leaving out drains'
// arrivals counters.
func countPrograms() int {
	var progs int
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return progs
		}
		id = next
		if !arrivalsCounter(id) {
			progs++
		}
	}
}

// arrivalsCounter reports whether program id is a drain's arrivals
// counter (internal/arrivals). No pin holds it: it ends with the drain,
// or with the process, and the kernel frees it a grace period later, so a
// snapshot just after a drain may still see it.
func arrivalsCounter(id ebpf.ProgramID) bool {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return false
	}
	defer p.Close()
	info, err := p.Info()
	return err == nil && strings.HasPrefix("sd_count_arrival", info.Name) && info.Name != ""
}

// nftRuleset lists ns's nftables tables, chains and rules, one per line.
func nftRuleset(t *testing.T, ns *netns.NS) string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseLasting()
	chains, err := c.ListChains()
	if err != nil {
		t.Fatalf("list nftables chains in %s: %v", ns.Path(), err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("list nftables tables in %s: %v", ns.Path(), err)
	}
	var s strings.Builder
	for _, tb := range tables {
		fmt.Fprintf(&s, "table %d %s\n", tb.Family, tb.Name)
	}
	for _, ch := range chains {
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatalf("list nftables rules in %s: %v", ns.Path(), err)
		}
		fmt.Fprintf(&s, "chain %s %s: %d rules\n", ch.Table.Name, ch.Name, len(rules))
	}
	return s.String()
}

// listenMPTCP opens an MPTCP listener in ns, as Go's net.Listen does by
// default, and returns its address.
func listenMPTCP(t *testing.T, ns *netns.NS) string {
	var ln net.Listener
	err := ns.Do(func() (err error) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		ln, err = lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func TestDrainBadInputChangesNothing(t *testing.T) {
	ns := nstest.New(t)
	plain := nstest.Listen(t, ns, "127.0.0.1:0", nil).Addr().String()
	mptcp := listenMPTCP(t, ns)
	otherPID := strconv.Itoa(os.Getppid())
	var udp net.PacketConn
	if err := ns.Do(func() (err error) { udp, err = net.ListenPacket("udp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	cases := [][]string{
		{"--listen", "127.0.0.1"},                                 // malformed: no port
		{"--listen", "127.0.0.1:65536"},                           // port above 65535
		{"--listen", udp.LocalAddr().String()},                    // UDP only
		{"--listen", "127.0.0.1:1"},                               // no listener
		{"--listen", "127.0.0.2:" + strings.Split(plain, ":")[1]}, // wrong address
		{"--listen", plain, "--backend", "bogus"},                 // unknown backend
		{"--listen", plain, "--backend", "reuseport"},             // no SO_REUSEPORT
		{"--listen", mptcp, "--backend", "reuseport"},             // MPTCP
		{"--listen", plain, "--pid", otherPID},                    // pid does not own it
		{"--listen", plain, "--timeout", "0s"},                    // zero timeout
		{"--listen", plain, "--timeout", "-5s"},                   // negative timeout
		{"--listen", plain, "--netns", "/nonexistent"},            // missing netns
		{"--listen", "127.0.0.1:0"},                               // port 0
	}
	for _, args := range cases {
		if !slices.Contains(args, "--netns") {
			args = append(args, "--netns", ns.Path())
		}
		before := snapshot(t, ns)
		code, stdout, stderr := runCLI(t, append([]string{"drain"}, args...)...)
		t.Logf("drain %q: %s", args, strings.TrimSpace(stderr))
		if code != exitInvalid || strings.Count(stderr, "\n") != 1 {
			t.Errorf("drain %q: exit %d, stderr %q; want exit 2 and one line (stdout %q)", args, code, stderr, stdout)
		}
		if after := snapshot(t, ns); !slices.Equal(after.pins, before.pins) || after.progs != before.progs || after.nft != before.nft {
			t.Errorf("drain %q changed the system:\n before %+v\n after  %+v", args, before, after)
		}
	}
}

func TestDrainJSONAndResume(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	before := snapshot(t, ns)
	code, stdout, stderr := runCLI(t, "drain", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--json", "--timeout", "5s")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || !strings.Contains(lines[len(lines)-1], `"phase":"drained"`) {
		t.Fatalf("drain: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["phase"] != "gated" || first["backend"] != "sklookup" {
		t.Errorf("first line %s: want phase gated by sklookup (%v)", lines[0], err)
	}
	if _, err := nstest.DialErr(ns, ln.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after drain, dial: %v; want connection refused", err)
	}
	code, stdout, _ = runCLI(t, "status", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--json")
	if code != 0 || !strings.Contains(stdout, `"sklookup"`) {
		t.Errorf("status after drain does not show the armed gate:\n%s", stdout)
	}
	for range 2 { // idempotent
		if code, _, stderr := runCLI(t, "resume", "--listen", ln.Addr().String(), "--netns", ns.Path()); code != 0 {
			t.Fatalf("resume: exit %d: %s", code, stderr)
		}
	}
	c, err := nstest.DialErr(ns, ln.Addr().String())
	if err != nil {
		t.Fatalf("after resume, dial: %v", err)
	}
	c.Close()
	if after := snapshot(t, ns); !slices.Equal(after.pins, before.pins) || after.progs != before.progs || after.nft != before.nft {
		t.Errorf("drain and resume left something:\n before %+v\n after  %+v", before, after)
	}
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf, 1) })
	return errors.Join(err, serr)
}

func TestDrainTimeoutListsWhatRemainsAndRollsBack(t *testing.T) {
	for _, backend := range []string{"reuseport", "sklookup", "nftables"} {
		t.Run(backend, func(t *testing.T) { testDrainTimeout(t, backend) })
	}
}

// testDrainTimeout gives the drain 2s: its timeout counts from the start,
// arming included, and arming a BPF gate takes ~0.5s under emulation
// (make vmtest), which left a 300ms drain no time to warn of the stall.
func testDrainTimeout(t *testing.T, backend string) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", reusePort) // never accepts
	client := nstest.Dial(t, ns, ln.Addr().String())
	before := snapshot(t, ns)
	code, stdout, stderr := runCLI(t, "drain", "--listen", ln.Addr().String(), "--netns", ns.Path(),
		"--backend", backend, "--json", "--timeout", "2s", "--stall", "100ms")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-1]
	if code != exitTimeout || !strings.Contains(last, `"phase":"timeout"`) ||
		!strings.Contains(last, client.LocalAddr().String()) {
		t.Fatalf("exit %d, last line %s; want exit 3 and a timeout line naming %s", code, last, client.LocalAddr())
	}
	if !strings.Contains(stderr, "wait for accept_queue=0 (1 left)") || !strings.Contains(stdout, "no worker is accepting") {
		t.Errorf("stderr %q, stdout:\n%s\nwant what was left and a stall warning", stderr, stdout)
	}
	c, err := nstest.DialErr(ns, ln.Addr().String())
	if err != nil {
		t.Fatalf("after a timed-out drain the port should accept again: %v", err)
	}
	c.Close()
	if after := snapshot(t, ns); !slices.Equal(after.pins, before.pins) || after.progs != before.progs || after.nft != before.nft {
		t.Errorf("rollback left something:\n before %+v\n after  %+v", before, after)
	}
}

func TestDrainReportsListenerClosed(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	nstest.Dial(t, ns, ln.Addr().String()) // queued: the drain waits on it
	go func() {
		time.Sleep(200 * time.Millisecond)
		ln.Close() // the server gives up its listener mid-drain
	}()
	code, _, stderr := runCLI(t, "drain", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--timeout", "10s")
	if code != exitListener || !strings.Contains(stderr, "listener closed") {
		t.Errorf("exit %d, stderr %q; want exit 5 and the listener closed", code, stderr)
	}
}

func TestDrainReportsServerExit(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	addr := ln.Addr().String()
	server := nstest.HoldInChild(t, ln)
	nstest.Dial(t, ns, addr) // queued: the drain waits on it
	go func() {
		time.Sleep(200 * time.Millisecond)
		server.Process.Kill() // the server crashes mid-drain
	}()
	code, _, stderr := runCLI(t, "drain", "--listen", addr, "--netns", ns.Path(), "--timeout", "10s")
	if code != exitServer || !strings.Contains(stderr, "server exited") {
		t.Errorf("exit %d, stderr %q; want exit 6 and the server exited", code, stderr)
	}
}

func TestSecondDrainExitsBusy(t *testing.T) {
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil) // never accepts
	nstest.Dial(t, ns, ln.Addr().String())
	first := make(chan int, 1)
	go func() {
		code, _, _ := runCLI(t, "drain", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--timeout", "2s")
		first <- code
	}()
	gated := nstest.WaitFor(time.Second, func() bool {
		c, err := nstest.DialErr(ns, ln.Addr().String())
		if c != nil {
			c.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if !gated {
		t.Fatal("the first drain did not gate the port within 1s")
	}
	code, _, stderr := runCLI(t, "drain", "--listen", ln.Addr().String(), "--netns", ns.Path(), "--timeout", "1s")
	if code != exitBusy || !strings.Contains(stderr, "being drained by sockdrain (pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second drain: exit %d, stderr %q; want exit 7 naming the first", code, stderr)
	}
	if code := <-first; code != exitTimeout {
		t.Errorf("first drain: exit %d, want 3 (its own timeout, undisturbed)", code)
	}
}
