package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// keepAlive is a set of keep-alive HTTP clients: Go's http.Client, one
// Transport (so one connection) each, looping GET, read the whole body,
// pause. Every request ends in one outcome: complete (status 200 and the
// expected body), refused (ECONNREFUSED, which only a new connection can
// get), or bad. A GET the Transport retried on a new connection after its
// reused one closed is not bad; it is counted as a retry.
type keepAlive struct {
	cfg        keepAliveConfig
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
	transports []*http.Transport

	complete, refused, bad atomic.Int64
	retries                atomic.Int64 // requests the Transport sent on a second connection
	dials, reused          atomic.Int64 // connections made, and requests on a reused one

	mu      sync.Mutex
	samples []string // the first bad outcomes, described
}

type keepAliveConfig struct {
	URL      string        // http://HOST:PORT/PATH, a literal IP
	Clients  int           // concurrent clients, one connection each
	Pause    time.Duration // between a response and the next request
	Jitter   bool          // pause uniformly from Pause/2 to 3*Pause/2 instead
	Requests int           // per client, at most
	Duration time.Duration // the whole run, at most
	Body     []byte        // what every complete response carries
}

// keepAliveCounts is a snapshot of a keepAlive's counters.
type keepAliveCounts struct {
	Complete, Refused, Bad, Retries, Dials, Reused int64
}

func (c keepAliveCounts) sub(d keepAliveCounts) keepAliveCounts {
	return keepAliveCounts{c.Complete - d.Complete, c.Refused - d.Refused, c.Bad - d.Bad,
		c.Retries - d.Retries, c.Dials - d.Dials, c.Reused - d.Reused}
}

func (c keepAliveCounts) String() string {
	return fmt.Sprintf("complete=%d refused=%d bad=%d retries=%d connections=%d reused=%d",
		c.Complete, c.Refused, c.Bad, c.Retries, c.Dials, c.Reused)
}

// startKeepAlive starts the clients; their sockets belong to ns. They
// stop after cfg.Requests each, cfg.Duration, or stop, whichever comes
// first. t.Cleanup stops them and closes their idle connections.
func startKeepAlive(t *testing.T, ns *netns.NS, cfg keepAliveConfig) *keepAlive {
	t.Helper()
	k := &keepAlive{cfg: cfg, stop: make(chan struct{})}
	dial := loadgen.DialIn(ns)
	for range cfg.Clients {
		tr := &http.Transport{
			DialContext:           dial,
			MaxIdleConnsPerHost:   1,
			DisableCompression:    true,
			ResponseHeaderTimeout: 5 * time.Second,
		}
		k.transports = append(k.transports, tr)
	}
	deadline := time.Now().Add(cfg.Duration)
	k.wg.Add(cfg.Clients)
	for _, tr := range k.transports {
		go k.client(&http.Client{Transport: tr, Timeout: 5 * time.Second}, deadline)
	}
	t.Cleanup(func() { k.Stop(); k.Wait(); k.CloseIdle() })
	return k
}

func (k *keepAlive) client(c *http.Client, deadline time.Time) {
	defer k.wg.Done()
	for i := 0; i < k.cfg.Requests && time.Now().Before(deadline); i++ {
		select {
		case <-k.stop:
			return
		default:
		}
		pause := k.cfg.Pause
		if k.cfg.Jitter {
			pause = pause/2 + rand.N(pause)
		}
		if k.get(c) == errRefused {
			pause = 20 * time.Millisecond
		}
		select {
		case <-k.stop:
			return
		case <-time.After(pause):
		}
	}
}

var errRefused = errors.New("refused")

// get makes one request and counts its outcome; it returns errRefused for
// a refused connect.
func (k *keepAlive) get(c *http.Client) error {
	var conns int
	var lastLocal string
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		conns++
		lastLocal = i.Conn.LocalAddr().String()
		if i.Reused {
			k.reused.Add(1)
		} else {
			k.dials.Add(1)
		}
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", k.cfg.URL, nil)
	start := time.Now()
	resp, err := c.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if conns > 1 {
		k.retries.Add(int64(conns - 1))
	}
	switch {
	case err == nil && resp.StatusCode == http.StatusOK && bytes.Equal(body, k.cfg.Body):
		k.complete.Add(1)
		return nil
	case err != nil && errors.Is(err, syscall.ECONNREFUSED):
		k.refused.Add(1)
		return errRefused
	case err == nil:
		err = fmt.Errorf("status %d, body of %d bytes (want %d, the same)", resp.StatusCode, len(body), len(k.cfg.Body))
	}
	k.bad.Add(1)
	k.mu.Lock()
	if len(k.samples) < 8 {
		k.samples = append(k.samples, fmt.Sprintf("at %s from %s after %s on %d connection(s): %v",
			start.Format("15:04:05.000"), lastLocal, time.Since(start).Round(time.Millisecond), conns, err))
	}
	k.mu.Unlock()
	return err
}

// Counts returns the counts so far.
func (k *keepAlive) Counts() keepAliveCounts {
	return keepAliveCounts{k.complete.Load(), k.refused.Load(), k.bad.Load(),
		k.retries.Load(), k.dials.Load(), k.reused.Load()}
}

// Samples describes the first bad outcomes.
func (k *keepAlive) Samples() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.samples, "\n")
}

// Stop asks every client to stop after its request in flight.
func (k *keepAlive) Stop() { k.stopOnce.Do(func() { close(k.stop) }) }

// Wait waits for every client to stop. Their idle connections stay open.
func (k *keepAlive) Wait() { k.wg.Wait() }

// CloseIdle closes the clients' idle connections.
func (k *keepAlive) CloseIdle() {
	for _, tr := range k.transports {
		tr.CloseIdleConnections()
	}
}

// waitConnections waits up to limit until the clients have made n
// connections and at least n requests on reused ones.
func (k *keepAlive) waitConnections(t *testing.T, n int64, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c := k.Counts(); c.Dials >= n && c.Reused >= n {
			return
		}
	}
	t.Fatalf("the clients have %s after %s, want %d connections in use", k.Counts(), limit, n)
}

// requireNoBad fails t if any request had a bad outcome.
func (k *keepAlive) requireNoBad(t *testing.T) {
	t.Helper()
	if c := k.Counts(); c.Bad != 0 {
		t.Errorf("%d bad outcomes (%s); first ones:\n%s", c.Bad, c, k.Samples())
	}
}

// slowResult is what a slow client got.
type slowResult struct {
	n   int64    // body bytes read
	sum [32]byte // their SHA-256
	err error
}

// slowGet fetches path from addr on a new keep-alive connection made in
// ns with a receive buffer of rcvbuf bytes, reading the body chunk bytes
// at a time with pause between reads: the server's send buffer stays
// full. It gives up after limit.
func slowGet(ns *netns.NS, addr, path string, rcvbuf, chunk int, pause, limit time.Duration) slowResult {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}}
		d.SetMultipathTCP(false)
		c, err = d.Dial("tcp4", addr)
		return err
	})
	if err != nil {
		return slowResult{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		return slowResult{err: err}
	}
	br := bufio.NewReaderSize(c, chunk)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return slowResult{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return slowResult{err: fmt.Errorf("status %d", resp.StatusCode)}
	}
	h := sha256.New()
	n, err := slowCopy(h, resp.Body, chunk, pause)
	r := slowResult{n: n, err: err}
	copy(r.sum[:], h.Sum(nil))
	return r
}

func slowCopy(h hash.Hash, r io.Reader, chunk int, pause time.Duration) (int64, error) {
	buf := make([]byte, chunk)
	var n int64
	for {
		m, err := r.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		time.Sleep(pause)
	}
}
