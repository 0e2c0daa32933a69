package loadgen_test

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// fixture is a listener in a test netns whose every accepted connection is
// handed to handle in its own goroutine.
type fixture struct {
	l  net.Listener
	wg sync.WaitGroup
}

func listenFixture(t *testing.T, ns *netns.NS, handle func(*net.TCPConn)) string {
	t.Helper()
	f := &fixture{}
	err := ns.Do(func() (err error) {
		f.l, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.wg.Add(1)
	go f.accept(handle)
	t.Cleanup(func() {
		f.l.Close()
		f.wg.Wait()
	})
	return f.l.Addr().String()
}

func (f *fixture) accept(handle func(*net.TCPConn)) {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			handle(c.(*net.TCPConn))
		}()
	}
}

// readHead reads the client's request head, so closing does not send a
// RST for unread bytes.
func readHead(c net.Conn) {
	buf := make([]byte, 4096)
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil || (n >= 4 && string(buf[n-4:n]) == "\r\n\r\n") {
			return
		}
	}
}

const header = "HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n"

func halfBody() []byte {
	b := make([]byte, 50)
	loadgen.FillBody(b)
	return append([]byte(header), b...)
}

func run(t *testing.T, ns *netns.NS, cfg loadgen.Config) loadgen.Result {
	t.Helper()
	cfg.Do = ns.Do
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	res, err := loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	return res
}

func TestLoadAgainstDemoServer(t *testing.T) {
	ns := nstest.New(t)
	srv, err := demoserver.Start(demoserver.Config{Do: ns.Do})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	res := run(t, ns, loadgen.Config{
		Addr: srv.Addr().String(), Workers: 16, Duration: time.Second, CheckBody: true,
	})
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	c := res.Counts
	if c.Complete == 0 || c.Complete != res.Total || len(res.Samples) != 0 {
		t.Errorf("want only complete attempts, got %+v, samples %v", c, res.Samples)
	}
	if served := srv.Stats().Served; served != c.Complete {
		t.Errorf("server served %d, load saw %d complete", served, c.Complete)
	}
	if res.TimeToRefuse >= 0 {
		t.Errorf("time to refuse %v with no refused attempt", res.TimeToRefuse)
	}
}

func TestLoadRefused(t *testing.T) {
	ns := nstest.New(t)
	res := run(t, ns, loadgen.Config{Addr: "127.0.0.1:1", Workers: 4, MaxAttempts: 200})
	if want := (loadgen.Counts{Refused: 200}); res.Counts != want || res.Total != 200 {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	if res.TimeToRefuse < 0 {
		t.Errorf("time to refuse %v, want one from the start", res.TimeToRefuse)
	}
}

// TestLoadCutResponses loads servers that cut every response short: each
// attempt ends in the outcome the cut makes, and the samples say so.
func TestLoadCutResponses(t *testing.T) {
	half := int64(len(halfBody()))
	for _, tc := range []struct {
		name  string
		serve func(*net.TCPConn)
		want  loadgen.Counts
		o     loadgen.Outcome
		bytes int64 // what a sample read before the cut
	}{
		{"reset before response", func(c *net.TCPConn) { c.SetLinger(0) },
			loadgen.Counts{ResetBeforeResponse: 40}, loadgen.ResetBeforeResponse, 0},
		{"reset mid-response", func(c *net.TCPConn) {
			readHead(c)
			c.Write(halfBody())
			c.SetLinger(0)
		}, loadgen.Counts{ResetMidResponse: 40}, loadgen.ResetMidResponse, half},
		{"partial", func(c *net.TCPConn) {
			readHead(c)
			c.Write(halfBody())
		}, loadgen.Counts{Partial: 40}, loadgen.Partial, half},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstest.New(t)
			addr := listenFixture(t, ns, tc.serve)
			res := run(t, ns, loadgen.Config{Addr: addr, Workers: 4, MaxAttempts: 40})
			if res.Counts != tc.want {
				t.Errorf("counts %+v, want %+v", res.Counts, tc.want)
			}
			checkSamples(t, res, tc.o, tc.bytes)
		})
	}
}

func TestLoadReadTimeout(t *testing.T) {
	ns := nstest.New(t)
	addr := listenFixture(t, ns, func(c *net.TCPConn) {
		io.Copy(io.Discard, c) // until the client gives up and closes
	})
	res := run(t, ns, loadgen.Config{
		Addr: addr, Workers: 4, MaxAttempts: 8, AttemptTimeout: 100 * time.Millisecond,
	})
	if want := (loadgen.Counts{Timeout: 8}); res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	checkSamples(t, res, loadgen.Timeout, 0)
}

// TestLoadConnectTimeout fills a listener's accept queue, so the kernel
// drops further SYNs and connects hang until the attempt's deadline.
func TestLoadConnectTimeout(t *testing.T) {
	ns := nstest.New(t)
	addr := fullListener(t, ns)
	res := run(t, ns, loadgen.Config{
		Addr: addr, Workers: 4, MaxAttempts: 8, AttemptTimeout: 100 * time.Millisecond,
	})
	if want := (loadgen.Counts{Timeout: 8}); res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
}

// fullListener listens with backlog 0, never accepts, and fills its queue
// with one connection.
func fullListener(t *testing.T, ns *netns.NS) string {
	t.Helper()
	var fd int
	var sa unix.Sockaddr
	err := ns.Do(func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		if err = unix.Listen(fd, 0); err != nil {
			return err
		}
		sa, err = unix.Getsockname(fd)
		return err
	})
	if err != nil {
		t.Fatal(os.NewSyscallError("listen", err))
	}
	t.Cleanup(func() { unix.Close(fd) })
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}).String()
	var filler net.Conn
	err = ns.Do(func() (err error) {
		filler, err = net.DialTimeout("tcp4", addr, time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("fill accept queue: %v", err)
	}
	t.Cleanup(func() { filler.Close() })
	return addr
}

func checkSamples(t *testing.T, res loadgen.Result, o loadgen.Outcome, bytes int64) {
	t.Helper()
	if len(res.Samples) != loadgen.DefaultSamples {
		t.Fatalf("%d samples, want %d", len(res.Samples), loadgen.DefaultSamples)
	}
	for _, s := range res.Samples {
		if s.Outcome != o || s.Bytes != bytes || s.Error == "" || s.Peer == "" {
			t.Errorf("sample %v, want %v after %d bytes", s, o, bytes)
		}
	}
}

func TestLoadBodyMismatch(t *testing.T) {
	ns := nstest.New(t)
	addr := listenFixture(t, ns, func(c *net.TCPConn) {
		readHead(c)
		c.Write([]byte(header + string(make([]byte, 100))))
	})
	res := run(t, ns, loadgen.Config{Addr: addr, Workers: 2, MaxAttempts: 10, CheckBody: true})
	if want := (loadgen.Counts{Other: 10}); res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
}

// TestLoadMarkAndStop stops the server under load: attempts after the stop
// are refused, TimeToRefuse is measured from the mark, and SinceMark leaves
// out the attempts that ended before it.
func TestLoadMarkAndStop(t *testing.T) {
	ns := nstest.New(t)
	srv, err := demoserver.Start(demoserver.Config{Do: ns.Do})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	l, err := loadgen.Start(t.Context(), loadgen.Config{
		Addr: srv.Addr().String(), Workers: 8, Duration: -1, MaxAttempts: 1_000_000, Do: ns.Do,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitCount(t, l, func(c loadgen.Counts) bool { return c.Complete >= 100 })
	l.Mark()
	before := l.Counts()
	srv.Stop()
	waitCount(t, l, func(c loadgen.Counts) bool { return c.Refused >= 100 })
	l.Stop()
	res, err := l.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Mark <= 0 || res.TimeToRefuse < 0 || res.Counts.Complete < 100 || res.Counts.Refused < 100 {
		t.Errorf("mark %v, time to refuse %v, counts %+v", res.Mark, res.TimeToRefuse, res.Counts)
	}
	if res.Total >= 1_000_000 {
		t.Errorf("Stop did not stop the load: %d attempts", res.Total)
	}
	// Attempts in flight at the mark (at most one per worker) may have
	// ended just before the snapshot, and count in both.
	if got, max := res.SinceMark.Total(), res.Total-before.Total()+8; got > max || got < res.Total-before.Total() {
		t.Errorf("since mark %d attempts, want %d to %d (%d in all, %d before the mark)",
			got, res.Total-before.Total(), max, res.Total, before.Total())
	}
	if res.SinceMark.Refused != res.Counts.Refused {
		t.Errorf("since mark %d refused, want all %d", res.SinceMark.Refused, res.Counts.Refused)
	}
}

// TestLoadContextCancel ends an unbounded load by its context.
func TestLoadContextCancel(t *testing.T) {
	ns := nstest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	l, err := loadgen.Start(ctx, loadgen.Config{Addr: "127.0.0.1:1", Workers: 2, Duration: -1, Do: ns.Do})
	if err != nil {
		t.Fatal(err)
	}
	waitCount(t, l, func(c loadgen.Counts) bool { return c.Refused >= 10 })
	cancel()
	res, err := l.Wait()
	if err != nil || res.Counts.Refused < 10 || res.Counts.Bad() != 0 {
		t.Errorf("after cancel: %+v, %v", res.Counts, err)
	}
}

// waitCount polls the live counts until ok, failing after 10s.
func waitCount(t *testing.T, l *loadgen.Load, ok func(loadgen.Counts) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ok(l.Counts()) {
			return
		}
	}
	t.Fatalf("counts never got there: %+v", l.Counts())
}
