package loadgen_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestKeepAliveRetriesAClosedIdleConnection loads a server that answers
// one request per connection with Connection: keep-alive, then closes the
// connection while the client pauses: each next request fails on the
// reused connection before any response byte, and goes again on a new
// connection, as HTTP clients do. Every attempt completes.
func TestKeepAliveRetriesAClosedIdleConnection(t *testing.T) {
	ns := nstest.New(t)
	var conns atomic.Int64
	addr := listenFixture(t, ns, func(c *net.TCPConn) {
		conns.Add(1)
		readHead(c)
		c.Write(append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), fullBody()...))
		time.Sleep(5 * time.Millisecond) // the client has read the response, and pauses
	})
	res := run(t, ns, loadgen.Config{Addr: addr, Workers: 2, MaxAttempts: 20, KeepAlive: true,
		Pause: 20 * time.Millisecond, CheckBody: true})
	if res.Counts != (loadgen.Counts{Complete: 20}) || conns.Load() != 20 {
		t.Errorf("counts %+v on %d connections: want 20 complete on 20", res.Counts, conns.Load())
	}
}

// TestKeepAliveReusesConnections wants one connection per worker when the
// server keeps them open, and a new one after a Connection: close.
func TestKeepAliveReusesConnections(t *testing.T) {
	ns := nstest.New(t)
	var conns atomic.Int64
	addr := listenFixture(t, ns, func(c *net.TCPConn) {
		conns.Add(1)
		for i := 0; i < 5; i++ {
			readHead(c)
			last := ""
			if i == 4 {
				last = "Connection: close\r\n"
			}
			c.Write(append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"+last+"\r\n"), fullBody()...))
		}
	})
	res := run(t, ns, loadgen.Config{Addr: addr, Workers: 1, MaxAttempts: 10, KeepAlive: true, CheckBody: true})
	if res.Counts != (loadgen.Counts{Complete: 10}) || conns.Load() != 2 {
		t.Errorf("counts %+v on %d connections: want 10 complete on 2", res.Counts, conns.Load())
	}
}

func fullBody() []byte {
	b := make([]byte, 100)
	loadgen.FillBody(b)
	return b
}
