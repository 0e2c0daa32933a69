package demoserver

import (
	"testing"
	"time"
)

func TestResponse(t *testing.T) {
	got := string(response(5, false))
	want := "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Length: 5\r\nConnection: close\r\n\r\nabcde"
	if got != want {
		t.Errorf("response %q, want %q", got, want)
	}
	got = string(response(3, true))
	want = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Length: 3\r\nConnection: keep-alive\r\n\r\nabc"
	if got != want {
		t.Errorf("keep-alive response %q, want %q", got, want)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Listeners: 3, BodySize: -1}.withDefaults()
	if !c.ReusePort || c.BodySize != 0 || c.Addr != DefaultAddr || c.StopTimeout != DefaultStopTimeout {
		t.Errorf("defaults %+v", c)
	}
	c = Config{}.withDefaults()
	if c.ReusePort || c.Listeners != 1 || c.BodySize != DefaultBodySize || c.ReadTimeout != 5*time.Second {
		t.Errorf("defaults %+v", c)
	}
}

func TestProtocolString(t *testing.T) {
	for p, want := range map[Protocol]string{TCP: "tcp", MPTCP: "mptcp", 17: "protocol(17)"} {
		if p.String() != want {
			t.Errorf("%d: %q, want %q", int(p), p, want)
		}
	}
}
