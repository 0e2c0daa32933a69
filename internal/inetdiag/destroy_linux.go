package inetdiag

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// destroyReadBuffer is the receive buffer asked for: room for thousands of
// events while the receiver is busy polling.
const destroyReadBuffer = 1 << 20

// Destroyed receives the kernel's reports of TCP sockets freed on one
// local port in one network namespace.
//
// The kernel reports a socket when it frees it: after the last reference
// and the last queued packet are gone. A connection closed by both ends is
// reported when its final ACK arrives, as it passes to TIME_WAIT, or when a
// reset ends it; one still held open by a process only when the process
// closes it. Accepting a queued connection and request sockets in
// SYN_RECV are never reported.
type Destroyed struct {
	nl   *netlink.Conn
	port uint16
}

// SubscribeDestroyed joins the TCP destroy groups of IPv4 and IPv6 in the
// network namespace open at netnsFD (the caller's when negative), keeping
// only events for sockets whose local port is port.
func SubscribeDestroyed(netnsFD int, port uint16) (_ *Destroyed, err error) {
	cfg := &netlink.Config{}
	if netnsFD >= 0 {
		cfg.NetNS = netnsFD
	}
	nl, err := netlink.Dial(sockDiagProtocol, cfg)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	defer func() {
		if err != nil {
			nl.Close()
		}
	}()
	filter, err := DestroyFilter(port)
	if err != nil {
		return nil, err
	}
	if err := nl.SetBPF(filter); err != nil {
		return nil, fmt.Errorf("attach destroy filter for port %d: %w", port, err)
	}
	nl.SetReadBuffer(destroyReadBuffer) // best effort: overruns are handled
	for _, g := range []uint32{groupTCPDestroy, groupTCP6Destroy} {
		if err := nl.JoinGroup(g); err != nil {
			return nil, fmt.Errorf("join sock_diag group %d: %w", g, err)
		}
	}
	return &Destroyed{nl: nl, port: port}, nil
}

// Receive blocks until the kernel reports sockets freed, and returns those
// on the port. It returns ErrOverrun when events were lost, and an error
// once Close is called.
func (d *Destroyed) Receive() ([]observe.Socket, error) {
	msgs, err := d.nl.Receive()
	if errors.Is(err, unix.ENOBUFS) {
		return nil, fmt.Errorf("receive destroy events on port %d: %w", d.port, ErrOverrun)
	}
	if err != nil {
		return nil, fmt.Errorf("receive destroy events on port %d: %w", d.port, err)
	}
	bodies := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		if m.Header.Type == sockDiagByFamily {
			bodies = append(bodies, m.Data)
		}
	}
	return ParseDestroyed(bodies, d.port)
}

// Close leaves the groups; a blocked Receive returns.
func (d *Destroyed) Close() error { return d.nl.Close() }
