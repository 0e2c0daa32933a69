package listenfd

import (
	"errors"
	"slices"
	"testing"
)

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080", ":80": "[::]:80", "*:0": "[::]:0",
		"[::1]:443": "[::1]:443", "[::ffff:10.0.0.1]:25": "10.0.0.1:25",
	} {
		got, err := ParseAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"8080", "localhost:80", "::1:80", "1.2.3.4:65536", "1.2.3.4:x", "[fe80::1%eth0]:80", "[::1]"} {
		if _, err := ParseAddr(in); !errors.Is(err, ErrBadAddress) {
			t.Errorf("ParseAddr(%q) = %v, want ErrBadAddress", in, err)
		}
	}
}

func TestEnviron(t *testing.T) {
	env := Environ([]string{"PATH=/bin", "LISTEN_FDS=9", "LISTEN_PID=1", "LISTEN_FDNAMES=x", ShimEnv + "=/x", "LISTEN_FDS_X=1"}, 2, "web")
	want := []string{"PATH=/bin", "LISTEN_FDS_X=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=web:web"}
	if !slices.Equal(env, want) {
		t.Errorf("Environ = %q\nwant %q", env, want)
	}
}

func TestShimEnviron(t *testing.T) {
	env := shimEnviron([]string{"A=1", ShimEnv + "=/usr/bin/srv", ShimEnv + "X=2", "LISTEN_FDS=1"}, 4242)
	want := []string{"A=1", ShimEnv + "X=2", "LISTEN_FDS=1", "LISTEN_PID=4242"}
	if !slices.Equal(env, want) {
		t.Errorf("shimEnviron = %q\nwant %q", env, want)
	}
}

func TestCount(t *testing.T) {
	if n, err := count("42", "3", 42); n != 3 || err != nil {
		t.Errorf("count(ours) = %d, %v; want 3", n, err)
	}
	for _, tc := range [][2]string{{"", "1"}, {"42", ""}, {"43", "1"}, {"x", "1"}} {
		if _, err := count(tc[0], tc[1], 42); !errors.Is(err, ErrNoSockets) {
			t.Errorf("count(pid %q, fds %q) = %v, want ErrNoSockets", tc[0], tc[1], err)
		}
	}
	if _, err := count("42", "-1", 42); err == nil || errors.Is(err, ErrNoSockets) {
		t.Errorf("count(fds -1) = %v, want a parse error", err)
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{"web": true, "8080": true, "a:b": false, "": false, "a b": false, "é": false} {
		if err := ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
