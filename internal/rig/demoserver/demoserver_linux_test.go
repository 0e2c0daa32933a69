package demoserver

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// load runs 200 attempts from inside ns and wants every one complete.
func load(t *testing.T, ns *netns.NS, s *Server) {
	t.Helper()
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Addr: s.Addr().String(), Workers: 8, MaxAttempts: 200, CheckBody: true, Do: ns.Do,
	})
	if err != nil || res.Counts != (loadgen.Counts{Complete: 200}) {
		t.Fatalf("load: %+v %v, want 200 complete", res, err)
	}
}

func sockopt(t *testing.T, l *net.TCPListener, opt int) int {
	t.Helper()
	rc, err := l.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) })
	if serr != nil {
		t.Fatal(os.NewSyscallError("getsockopt", serr))
	}
	return v
}

func TestPlain(t *testing.T) {
	ns := nstest.New(t)
	s := start(t, Config{Do: ns.Do})
	if len(s.Listeners()) != 1 || sockopt(t, s.Listeners()[0], unix.SO_REUSEPORT) != 0 {
		t.Fatalf("want one socket without SO_REUSEPORT")
	}
	if p, err := s.Protocol(); err != nil || p != TCP {
		t.Errorf("protocol %v %v, want tcp", p, err)
	}
	load(t, ns, s)
	if st := s.Stats(); st.Accepted != 200 || st.Served != 200 {
		t.Errorf("stats %+v, want 200 accepted and served", st)
	}
}

func TestReusePort(t *testing.T) {
	ns := nstest.New(t)
	s := start(t, Config{Do: ns.Do, Listeners: 4, Addr: "[::1]:0", BodySize: 10000})
	ls := s.Listeners()
	if len(ls) != 4 {
		t.Fatalf("%d listeners, want 4", len(ls))
	}
	for _, l := range ls {
		if l.Addr().(*net.TCPAddr).AddrPort() != s.Addr() || sockopt(t, l, unix.SO_REUSEPORT) != 1 {
			t.Errorf("listener %s: want %s with SO_REUSEPORT", l.Addr(), s.Addr())
		}
	}
	files, err := s.Files()
	if err != nil || len(files) != 4 {
		t.Fatalf("files: %d, %v", len(files), err)
	}
	for _, f := range files {
		f.Close()
	}
	load(t, ns, s)
}

func TestMPTCP(t *testing.T) {
	ns := nstest.New(t)
	requireMPTCP(t, ns)
	s := start(t, Config{Do: ns.Do, MPTCP: true, Listeners: 2})
	if p, err := s.Protocol(); err != nil || p != MPTCP {
		t.Fatalf("protocol %v %v, want mptcp", p, err)
	}
	load(t, ns, s)
}

// requireMPTCP skips unless the kernel has MPTCP enabled in ns.
func requireMPTCP(t *testing.T, ns *netns.NS) {
	var b []byte
	ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/sys/net/mptcp/enabled")
		return err
	})
	if strings.TrimSpace(string(b)) != "1" {
		t.Skip("needs a kernel with MPTCP enabled (net.mptcp.enabled=1)")
	}
}

// TestStopWaitsForRequest stops the server while a request waits out its
// delay: the request is still answered in full.
func TestStopWaitsForRequest(t *testing.T) {
	ns := nstest.New(t)
	s := start(t, Config{Do: ns.Do, Delay: 200 * time.Millisecond, BodySize: 10})
	c := request(t, ns, s)
	waitActive(t, s, 1)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasSuffix(string(b), "\r\n\r\nabcdefghij") {
		t.Errorf("response %q, %v", b, err)
	}
	if st := s.Stats(); st.Served != 1 || st.Active != 0 {
		t.Errorf("stats %+v after stop", st)
	}
}

func TestStopTimeout(t *testing.T) {
	ns := nstest.New(t)
	s := start(t, Config{Do: ns.Do, Delay: time.Minute, StopTimeout: 50 * time.Millisecond})
	c := request(t, ns, s)
	waitActive(t, s, 1)
	if err := s.Stop(); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("stop: %v, want %v", err, ErrStopTimeout)
	}
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("cut request got %q", b)
	}
	if err := s.Stop(); !errors.Is(err, ErrStopTimeout) {
		t.Errorf("second stop: %v, want the first's result", err)
	}
}

func request(t *testing.T, ns *netns.NS, s *Server) net.Conn {
	t.Helper()
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", s.Addr().String(), time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitActive(t *testing.T, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s.Stats().Active == n {
			return
		}
	}
	t.Fatalf("active %d, want %d", s.Stats().Active, n)
}

func TestListenError(t *testing.T) {
	ns := nstest.New(t)
	s := start(t, Config{Do: ns.Do})
	// The port is taken by a socket without SO_REUSEPORT.
	_, err := Start(Config{Do: ns.Do, Addr: s.Addr().String(), Listeners: 2})
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("start on a taken port: %v, want EADDRINUSE", err)
	}
}

// TestKeepAlive serves 200 requests from 4 keep-alive clients on 4
// connections.
func TestKeepAlive(t *testing.T) {
	ns := nstest.New(t)
	s := start(t, Config{Do: ns.Do, KeepAlive: true, BodySize: 100})
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Addr: s.Addr().String(), Workers: 4, MaxAttempts: 200, CheckBody: true, KeepAlive: true, Do: ns.Do,
	})
	if err != nil || res.Counts != (loadgen.Counts{Complete: 200}) {
		t.Fatalf("load: %+v %v, want 200 complete", res, err)
	}
	if st := s.Stats(); st.Accepted != 4 || st.Served != 200 {
		t.Errorf("stats %+v, want 4 connections and 200 responses", st)
	}
}

// TestShutdownClosesIdleKeepAlive stops a keep-alive server with one idle
// connection and one request in flight: the idle one is closed at once,
// the request is answered with Connection: close, and Shutdown returns
// without waiting for the idle client.
func TestShutdownClosesIdleKeepAlive(t *testing.T) {
	ns := nstest.New(t)
	s := start(t, Config{Do: ns.Do, KeepAlive: true, Delay: 200 * time.Millisecond, BodySize: 3})
	idle := request(t, ns, s)
	want := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc"
	if b := readN(t, idle, len(want)); b != want {
		t.Fatalf("first response %q, want %q", b, want)
	}
	busy := request(t, ns, s)
	waitActive(t, s, 2)
	time.Sleep(20 * time.Millisecond) // the busy request is read and waiting out its delay
	start := time.Now()
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(idle); len(b) != 0 || err != nil {
		t.Errorf("idle connection read %q, %v: want a clean close", b, err)
	}
	b, err := io.ReadAll(busy)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.0 200 OK") || !strings.Contains(string(b), "Connection: close") {
		t.Errorf("in-flight response %q, %v: want it whole, with Connection: close", b, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("shutdown took %v, want about the request's delay", took)
	}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(b)
}
