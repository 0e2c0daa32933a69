// Package httpclients runs keep-alive HTTP clients as Go programs make
// them: net/http's Client, one Transport (so one connection) each, looping
// GET, read the whole body, pause. The keep-alive tests and the
// load-balancer bench count what such clients get while a server behind
// them is drained. (loadgen's KeepAlive workers speak HTTP themselves, and
// classify every failure; these see what net/http makes of it.)
//
// Every request ends in one outcome: complete (status 200 and the expected
// body), refused (ECONNREFUSED, which only a new connection can get), or
// bad. A GET the Transport retried on a new connection after its reused
// one closed is not bad; it is counted as a retry.
package httpclients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// maxSamples is how many bad outcomes Samples describes.
const maxSamples = 8

// Config describes the clients.
type Config struct {
	URL      string        // http://HOST:PORT/PATH, a literal IP
	Clients  int           // concurrent clients, one connection each
	Pause    time.Duration // between a response and the next request
	Jitter   bool          // pause uniformly from Pause/2 to 3*Pause/2 instead
	Requests int           // per client, at most
	Duration time.Duration // the whole run, at most
	Body     []byte        // what every complete response carries
	// RefusedPause replaces the pause after a refused connect; 0 keeps
	// the pause.
	RefusedPause time.Duration
}

// Counts is a snapshot of the clients' counters.
type Counts struct {
	Complete, Refused, Bad int64 // the outcomes
	Retries                int64 // requests the Transport sent on a second connection
	Dials, Reused          int64 // connections made, and requests on a reused one
}

// Sub returns the counts from d to c.
func (c Counts) Sub(d Counts) Counts {
	return Counts{c.Complete - d.Complete, c.Refused - d.Refused, c.Bad - d.Bad,
		c.Retries - d.Retries, c.Dials - d.Dials, c.Reused - d.Reused}
}

func (c Counts) String() string {
	return fmt.Sprintf("complete=%d refused=%d bad=%d retries=%d connections=%d reused=%d",
		c.Complete, c.Refused, c.Bad, c.Retries, c.Dials, c.Reused)
}

// Clients is a running set of clients.
type Clients struct {
	cfg        Config
	deadline   time.Time
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
	transports []*http.Transport

	complete, refused, bad atomic.Int64
	retries                atomic.Int64
	dials, reused          atomic.Int64

	mu      sync.Mutex
	samples []string // the first bad outcomes, described
}

// Start starts the clients; their sockets belong to ns. They stop after
// cfg.Requests each, cfg.Duration, or Stop, whichever comes first.
func Start(ns *netns.NS, cfg Config) *Clients {
	k := &Clients{cfg: cfg, deadline: time.Now().Add(cfg.Duration), stop: make(chan struct{})}
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
	k.wg.Add(cfg.Clients)
	for _, tr := range k.transports {
		go k.client(&http.Client{Transport: tr, Timeout: 5 * time.Second})
	}
	return k
}

func (k *Clients) client(c *http.Client) {
	defer k.wg.Done()
	for i := 0; i < k.cfg.Requests && k.Running(); i++ {
		select {
		case <-k.stop:
			return
		default:
		}
		pause := k.cfg.Pause
		if k.cfg.Jitter {
			pause = pause/2 + rand.N(pause)
		}
		if k.get(c) == errRefused && k.cfg.RefusedPause > 0 {
			pause = k.cfg.RefusedPause
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
func (k *Clients) get(c *http.Client) error {
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
	if len(k.samples) < maxSamples {
		k.samples = append(k.samples, fmt.Sprintf("at %s from %s after %s on %d connection(s): %v",
			start.Format("15:04:05.000"), lastLocal, time.Since(start).Round(time.Millisecond), conns, err))
	}
	k.mu.Unlock()
	return err
}

// Counts returns the counts so far.
func (k *Clients) Counts() Counts {
	return Counts{k.complete.Load(), k.refused.Load(), k.bad.Load(),
		k.retries.Load(), k.dials.Load(), k.reused.Load()}
}

// Samples describes the first bad outcomes, in order.
func (k *Clients) Samples() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.samples...)
}

// Running reports whether the clients are still within cfg.Duration.
func (k *Clients) Running() bool { return time.Now().Before(k.deadline) }

// Stop asks every client to stop after its request in flight.
func (k *Clients) Stop() { k.stopOnce.Do(func() { close(k.stop) }) }

// Wait waits for every client to stop. Their idle connections stay open.
func (k *Clients) Wait() { k.wg.Wait() }

// CloseIdle closes the clients' idle connections.
func (k *Clients) CloseIdle() {
	for _, tr := range k.transports {
		tr.CloseIdleConnections()
	}
}

// Close stops the clients, waits for them and closes their connections.
func (k *Clients) Close() {
	k.Stop()
	k.Wait()
	k.CloseIdle()
}
