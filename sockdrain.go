// Package sockdrain drains a live TCP server's listen queue without touching
// the server: it gates new connections at the kernel, lets the server's own
// workers empty the accept backlog, and reports when nothing is left on the
// port.
//
// This package is the public API. The building blocks it composes live in
// the packages under sockdrain/, one per concept.
package sockdrain

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// Target names the listening TCP address to observe or drain.
type Target struct {
	// Addr is the address clients connect to. The zero Addr selects every
	// listener on Port.
	Addr netip.Addr
	Port uint16
	// NetNS is the path of the network namespace the listener lives in,
	// such as /run/netns/NAME or /proc/PID/ns/net. Empty means the caller's.
	NetNS string
}

// Listener is the observed state of one listening address.
type Listener = observe.Listener

// ParseListen parses "HOST:PORT" into a Target. HOST is an IP literal, with
// IPv6 in brackets; an empty HOST or "*" selects every address on PORT.
func ParseListen(s string) (Target, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Target{}, invalidf("listen address %q: want HOST:PORT", s)
	}
	host, portStr := s[:i], s[i+1:]
	port, err := ParsePort(portStr)
	if err != nil {
		return Target{}, invalidf("listen address %q: want a port from 1 to 65535", s)
	}
	t := Target{Port: port}
	switch {
	case host == "" || host == "*":
		return t, nil
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
		host = host[1 : len(host)-1]
	case strings.Contains(host, ":"):
		return Target{}, invalidf("listen address %q: put an IPv6 address in brackets, as [::1]:%s", s, portStr)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return Target{}, invalidf("listen address %q: host must be an IP address", s)
	}
	t.Addr = addr.Unmap()
	return t, nil
}

// ParseTarget is the Target that exactly one of listen ("HOST:PORT", see
// ParseListen) and port (see ParsePort) names; both empty is an error
// too. Errors match ErrInvalid.
func ParseTarget(listen, port string) (Target, error) {
	switch {
	case listen != "" && port != "":
		return Target{}, invalidf("give --listen or --port, not both")
	case listen != "":
		return ParseListen(listen)
	case port != "":
		p, err := ParsePort(port)
		return Target{Port: p}, err
	}
	return Target{}, invalidf("give --listen HOST:PORT or --port PORT")
}

// ParsePort parses a TCP port number, 1 to 65535.
func ParsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, invalidf("port %q: want a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// String formats t as HOST:PORT, with "*" for every address.
func (t Target) String() string {
	s := "*:" + strconv.Itoa(int(t.Port))
	if t.Addr.IsValid() {
		s = netip.AddrPortFrom(t.Addr, t.Port).String()
	}
	if t.NetNS != "" {
		s += " in netns " + t.NetNS
	}
	return s
}

func invalidf(format string, args ...any) error {
	return inputError{fmt.Errorf(format, args...)}
}
