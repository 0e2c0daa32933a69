package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// bodySize is the response body every server sends, in loadgen's pattern.
const bodySize = 4096

// stopTimeout bounds every graceful stop.
const stopTimeout = 10 * time.Second

// server is one server under test, listening in a namespace, with the one
// way a strategy stops it.
type server interface {
	Addr() netip.AddrPort
	// Path is what the load requests.
	Path() string
	// Stop stops the server the strategy's way and waits until it has.
	Stop() error
}

// demoStop is the demo server stopped by close() on its listener (the
// demo server then waits for requests in flight).
type demoStop struct{ *demoserver.Server }

func startDemo(ns *netns.NS) (*demoserver.Server, error) {
	return demoserver.Start(demoserver.Config{Addr: "127.0.0.1:0", ReusePort: true,
		BodySize: bodySize, StopTimeout: stopTimeout, Do: ns.Do})
}

// demoInNewNS starts the demo server in a fresh namespace; end stops the
// server and removes the namespace.
func demoInNewNS() (ns *netns.NS, srv *demoserver.Server, end func(), err error) {
	if ns, err = newNS(); err != nil {
		return nil, nil, nil, err
	}
	if srv, err = startDemo(ns); err != nil {
		ns.Remove()
		return nil, nil, nil, err
	}
	return ns, srv, func() { srv.Stop(); ns.Remove() }, nil
}

func startClose(ns *netns.NS) (server, error) {
	s, err := startDemo(ns)
	return demoStop{s}, err
}

func (s demoStop) Path() string { return "/" }

// shutdownStop is the demo server stopped by shutdown(SHUT_RD) on its
// listener, then close().
type shutdownStop struct{ demoStop }

func startShutdown(ns *netns.NS) (server, error) {
	s, err := startDemo(ns)
	return shutdownStop{demoStop{s}}, err
}

func (s shutdownStop) Stop() error {
	var errs []error
	for _, l := range s.Listeners() {
		errs = append(errs, sockfd.Control(l, func(fd int) error {
			return os.NewSyscallError("shutdown", unix.Shutdown(fd, unix.SHUT_RD))
		}))
	}
	return errors.Join(append(errs, s.demoStop.Stop())...)
}

// httpStop is a net/http server stopped by http.Server.Shutdown.
type httpStop struct {
	srv  *http.Server
	addr netip.AddrPort
	done chan error
}

func startHTTP(ns *netns.NS) (server, error) {
	var ln net.Listener
	err := ns.Do(func() (err error) {
		lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, c syscall.RawConn) error {
			return sockfd.Control(rawConn{c}, func(fd int) error {
				return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1))
			})
		}}
		lc.SetMultipathTCP(false)
		ln, err = lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen for net/http: %w", err)
	}
	body := make([]byte, bodySize)
	loadgen.FillBody(body)
	h := &httpStop{addr: ln.Addr().(*net.TCPAddr).AddrPort(), done: make(chan error, 1)}
	h.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(
		func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		})}
	go func() { h.done <- h.srv.Serve(ln) }()
	return h, nil
}

// rawConn lets control take a syscall.RawConn.
type rawConn struct{ c syscall.RawConn }

func (r rawConn) SyscallConn() (syscall.RawConn, error) { return r.c, nil }

func (h *httpStop) Addr() netip.AddrPort { return h.addr }
func (h *httpStop) Path() string         { return "/" }

func (h *httpStop) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	if serr := <-h.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
