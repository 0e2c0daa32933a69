//go:build freebsd && freebsdkernel

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/listenfd"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// The test binary is also the programs the run test starts: the CLI when
// bsdRunAsCLI is set, and a server on LISTEN_FDS when its first argument
// is bsdChildArg. They need nothing of a FreeBSD userland: no sh.
const (
	bsdRunAsCLI = "SOCKDRAIN_TEST_RUN_AS_CLI"
	bsdChildArg = "sockdrain-bsd-test-child"
	bsdBody     = 1000
)

func TestMain(m *testing.M) {
	listenfd.RunShim()
	if len(os.Args) > 1 && os.Args[1] == bsdChildArg {
		os.Exit(bsdChild())
	}
	if os.Getenv("PATH") == "" { // a bare PID 1 sets none; the gates run pfctl and ipfw
		os.Setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin")
	}
	if os.Getenv(bsdRunAsCLI) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// bsdChild serves HTTP on the sockets passed by LISTEN_FDS until SIGTERM.
func bsdChild() int {
	files, err := listenfd.Files()
	if err != nil || len(files) == 0 {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 90
	}
	body := make([]byte, bsdBody)
	loadgen.FillBody(body)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(2 * time.Millisecond)
		w.Write(body)
	})}
	for _, f := range files {
		ln, err := net.FileListener(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 91
		}
		go srv.Serve(ln)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	<-sigs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	return 0
}

// TestKernelRunDrainControl runs `sockdrain run` with a real child server
// on a loopback port, drains it through `sockdrain drain --control` under
// closed-loop load from loopback clients, and checks that every client got
// a complete response or ECONNREFUSED, and that status sees the listener
// after the drain. It needs root, and pf or ipfw to gate with.
func TestKernelRunDrainControl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the control socket serves root only, and the gates run pfctl or ipfw")
	}
	if !haveGate() {
		t.Skip("needs a gate: pf enabled with anchor \"sockdrain/*\", or ipfw loaded and enabled")
	}
	addr := freePort(t)
	ctl := filepath.Join(t.TempDir(), "c.sock")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var runOut bytes.Buffer
	cmd := exec.Command(self, "run", "--listen", addr.String(), "--control", ctl, "--", self, bsdChildArg)
	cmd.Env = append(os.Environ(), bsdRunAsCLI+"=1")
	cmd.Stdout, cmd.Stderr = &runOut, &runOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		t.Logf("sockdrain run said:\n%s", runOut.String())
	}()
	waitServing(t, addr, done)

	load, err := loadgen.Start(t.Context(), loadgen.Config{
		Addr: addr.String(), Workers: 16, Duration: 20 * time.Second, MaxAttempts: 100_000,
		AttemptTimeout: 3 * time.Second, CheckBody: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer load.Stop()
	time.Sleep(time.Second)
	var out bytes.Buffer
	code := run(t.Context(), env{args: []string{"sockdrain", "drain", "--control", ctl, "--timeout", "20s", "--json"}, stdout: &out, stderr: &out})
	if code != 0 {
		t.Errorf("drain --control exited %d:\n%s", code, out.String())
	}
	target := sockdrain.Target{Addr: addr.Addr(), Port: addr.Port()}
	for i := range 20 {
		if ls, err := sockdrain.Status(target); err != nil || len(ls) != 1 {
			t.Errorf("status %d after the drain = %d listeners, %v; want the live one", i, len(ls), err)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err // for the deferred wait
		if err != nil {
			t.Errorf("sockdrain run after SIGTERM: %v, want exit 0 (the child's)", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("sockdrain run did not exit within 10s of SIGTERM")
	}
	time.Sleep(300 * time.Millisecond)
	load.Stop()
	res, err := load.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d complete, %d refused, %d bad", res.Counts.Complete, res.Counts.Refused, res.Counts.Bad())
	if res.Counts.Bad() != 0 {
		t.Errorf("%d clients got neither a response nor ECONNREFUSED: %+v\nfirst ones: %v", res.Counts.Bad(), res.Counts, res.Samples)
	}
	if res.Counts.Complete == 0 || res.Counts.Refused == 0 {
		t.Errorf("%d complete, %d refused: the load never reached the server, or the gate never refused", res.Counts.Complete, res.Counts.Refused)
	}
}

func haveGate() bool {
	for _, b := range sockdrain.Probe() {
		if b.Available && (b.Name == "pf" || b.Name == "ipfw") {
			return true
		}
	}
	return false
}

// freePort is a loopback address whose port nothing listens on now.
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// waitServing waits, at most 10s, until the server answers on addr.
func waitServing(t *testing.T, addr netip.AddrPort, exited chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err // for the caller's deferred wait
			t.Fatalf("sockdrain run exited before serving: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr.String() + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing served %s within 10s", addr)
}
