package sklookup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
)

// ipprotoMPTCP is IPPROTO_MPTCP. A SOCKMAP takes no MPTCP socket.
const ipprotoMPTCP = 262

// socketFacts is what the gate learns from the listener's sockets.
type socketFacts struct {
	tied   bool // every socket can enter the SOCKMAP
	v6only bool // an IPv6 socket has IPV6_V6ONLY set
}

func readSockets(socks []*os.File) (socketFacts, error) {
	facts := socketFacts{tied: len(socks) > 0}
	for _, f := range socks {
		err := sockfd.Control(f, func(fd int) error {
			proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
			if err != nil {
				return err
			}
			facts.tied = facts.tied && proto != ipprotoMPTCP
			return readV6Only(fd, &facts.v6only)
		})
		if err != nil {
			return facts, fmt.Errorf("inspect socket %s: %w", f.Name(), os.NewSyscallError("getsockopt", err))
		}
	}
	return facts, nil
}

func readV6Only(fd int, v6only *bool) error {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || domain != unix.AF_INET6 {
		return err
	}
	v, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	*v6only = *v6only || v != 0
	return err
}

// configFor says what to refuse for a listener on addr: that address, or
// with a wildcard every address of its family, and IPv4 too for a [::]
// listener that is not IPv6-only.
func configFor(addr netip.AddrPort, facts socketFacts) sklookupGateConfig {
	cfg := sklookupGateConfig{Port: uint32(addr.Port())}
	if facts.tied {
		cfg.Tied = 1
		cfg.GraceNs = uint64(CloseGrace)
	}
	ip := addr.Addr().Unmap()
	switch {
	case ip.Is4():
		cfg.V4 = 1
		a := ip.As4()
		cfg.Ip4 = binary.NativeEndian.Uint32(a[:]) // network order in memory
	case ip.IsUnspecified():
		cfg.V6 = 1
		if !facts.v6only {
			cfg.V4 = 1
		}
	default:
		cfg.V6 = 1
		a := ip.As16()
		for i := range cfg.Ip6 {
			cfg.Ip6[i] = binary.NativeEndian.Uint32(a[4*i:])
		}
	}
	return cfg
}

// addSockets puts the listener's sockets in the SOCKMAP of a tied gate.
func (g *Gate) addSockets() error {
	if !g.Tied() {
		return nil
	}
	for i, f := range g.l.Sockets[:min(len(g.l.Sockets), maxListeners)] {
		err := sockfd.Control(f, func(fd int) error {
			return g.objs.Listeners.Update(uint32(i), uint64(fd), ebpf.UpdateAny)
		})
		if err != nil {
			return fmt.Errorf("add socket %s to sk_lookup listeners: %w", f.Name(), err)
		}
	}
	return nil
}

// refusing reports whether a tied gate refuses now: a socket is left in
// the SOCKMAP, or the program found one there less than the grace ago.
func (g *Gate) refusing() (bool, error) {
	if open, err := g.listenerOpen(); err != nil || open {
		return open, err
	}
	var cfg sklookupGateConfig
	if err := g.objs.Config.Lookup(uint32(0), &cfg); err != nil {
		return false, fmt.Errorf("read sk_lookup config: %w", err)
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil { // bpf_ktime_get_ns's clock
		return false, err
	}
	return cfg.SeenOpenNs != 0 && uint64(now.Nano())-cfg.SeenOpenNs < cfg.GraceNs, nil
}

// listenerOpen reports whether a socket is left in the SOCKMAP.
func (g *Gate) listenerOpen() (bool, error) {
	var cookie uint64
	for i := range uint32(maxListeners) {
		err := g.objs.Listeners.Lookup(i, &cookie)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return false, fmt.Errorf("read sk_lookup listeners: %w", err)
		}
	}
	return false, nil
}
