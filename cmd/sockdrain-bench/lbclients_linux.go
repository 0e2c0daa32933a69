package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
)

// keepAliveLoad is a set of keep-alive HTTP clients for table 7: Go's
// http.Client, one Transport (so one connection) each, looping GET, read
// the whole body, pause. The same idea as the keep-alive tests' clients
// (cmd/sockdrain/httpclients_linux_test.go), which a program cannot
// import. Every request ends complete (200 and the expected body),
// refused (ECONNREFUSED at connect) or bad.
type keepAliveLoad struct {
	url        string
	body       []byte
	pause      time.Duration
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
	transports []*http.Transport
	deadline   time.Time

	complete, refused, bad atomic.Int64

	mu     sync.Mutex
	sample string // the first bad outcome, described
}

// loadCounts is a snapshot of a keepAliveLoad's counters.
type loadCounts struct{ complete, refused, bad int64 }

func (c loadCounts) sub(d loadCounts) loadCounts {
	return loadCounts{c.complete - d.complete, c.refused - d.refused, c.bad - d.bad}
}

// startKeepAliveLoad starts clients GETting url from inside ns, each
// pausing uniformly from pause/2 to 3*pause/2 between requests. Each
// stops after requests requests, at limit, or on Stop.
func startKeepAliveLoad(ns *netns.NS, url string, body []byte, clients, requests int, pause, limit time.Duration) *keepAliveLoad {
	k := &keepAliveLoad{url: url, body: body, pause: pause, stop: make(chan struct{}), deadline: time.Now().Add(limit)}
	dial := loadgen.DialIn(ns)
	k.wg.Add(clients)
	for range clients {
		tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 1, DisableCompression: true,
			ResponseHeaderTimeout: 5 * time.Second}
		k.transports = append(k.transports, tr)
		go k.client(&http.Client{Transport: tr, Timeout: 5 * time.Second}, requests)
	}
	return k
}

func (k *keepAliveLoad) client(c *http.Client, requests int) {
	defer k.wg.Done()
	for i := 0; i < requests && time.Now().Before(k.deadline); i++ {
		k.get(c)
		select {
		case <-k.stop:
			return
		case <-time.After(k.pause/2 + rand.N(k.pause)):
		}
	}
}

func (k *keepAliveLoad) get(c *http.Client) {
	resp, err := c.Get(k.url)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	switch {
	case err == nil && resp.StatusCode == http.StatusOK && bytes.Equal(body, k.body):
		k.complete.Add(1)
		return
	case err != nil && errors.Is(err, syscall.ECONNREFUSED):
		k.refused.Add(1)
		return
	case err == nil:
		err = fmt.Errorf("status %d, body of %d bytes (want %d, the same)", resp.StatusCode, len(body), len(k.body))
	}
	k.bad.Add(1)
	k.mu.Lock()
	if k.sample == "" {
		k.sample = fmt.Sprintf("at %s: %v", time.Now().Format("15:04:05.000"), err)
	}
	k.mu.Unlock()
}

// counts returns the counts so far.
func (k *keepAliveLoad) counts() loadCounts {
	return loadCounts{k.complete.Load(), k.refused.Load(), k.bad.Load()}
}

// firstBad describes the first bad outcome, if any.
func (k *keepAliveLoad) firstBad() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sample
}

// running reports whether the clients are still within their time limit.
func (k *keepAliveLoad) running() bool { return time.Now().Before(k.deadline) }

// waitServed waits up to limit until the clients have n complete answers.
func (k *keepAliveLoad) waitServed(ctx context.Context, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for k.counts().complete < n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the keep-alive clients got %d complete answers in %s, want %d", k.counts().complete, limit, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// close stops the clients, waits for them and closes their connections.
func (k *keepAliveLoad) close() {
	k.stopOnce.Do(func() { close(k.stop) })
	k.wg.Wait()
	for _, tr := range k.transports {
		tr.CloseIdleConnections()
	}
}
