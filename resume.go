package sockdrain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/sockdrain/sockdrain/internal/backend"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Resume opens every gate sockdrain armed for t, whichever process armed
// it. It is idempotent, and works when the listener is gone too. It returns
// the backends it found armed. If ctx ends first, it opens no more gates
// and returns ctx's error with those it opened.
func Resume(ctx context.Context, t Target) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	s, err := openSession(t, grabFrom(0, nil), true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	candidates, err := resumeCandidates(s, t)
	if err != nil {
		return nil, err
	}
	var opened []string
	var errs []error
	for _, gl := range candidates {
		for _, b := range backend.All {
			if ctx.Err() != nil {
				return opened, errors.Join(append(errs, context.Cause(ctx))...)
			}
			armed, err := disarm(b, gl)
			if armed {
				opened = append(opened, fmt.Sprintf("%s on %s", b.Name, gl.Addr))
			}
			errs = append(errs, err)
		}
	}
	return opened, errors.Join(errs...)
}

// resumeCandidates are the listeners a gate may have been armed for: those
// serving t now; and, for gates whose listener has gone, t's own address,
// the wildcards of its port, and every listener of t's namespace and port
// that has pinned gate state.
func resumeCandidates(s *session, t Target) ([]gate.Listener, error) {
	ino, err := s.ns.Inode()
	if err != nil {
		return nil, err
	}
	cands := slices.Clone(s.gls)
	addrs := []netip.AddrPort{netip.AddrPortFrom(netip.IPv4Unspecified(), t.Port), netip.AddrPortFrom(netip.IPv6Unspecified(), t.Port)}
	if t.Addr.IsValid() {
		addrs = append(addrs, netip.AddrPortFrom(t.Addr, t.Port))
	}
	for _, b := range backend.All {
		if b.Pinned == nil {
			continue
		}
		pinned, err := b.Pinned()
		if err != nil {
			return nil, err
		}
		for _, p := range pinned {
			if p.NetNSInode == ino && p.Addr.Port() == t.Port && (!t.Addr.IsValid() || p.Addr.Addr() == t.Addr || p.Addr.Addr().IsUnspecified()) {
				addrs = append(addrs, p.Addr)
			}
		}
	}
	for _, ap := range addrs {
		if !slices.ContainsFunc(cands, func(gl gate.Listener) bool { return gl.Addr == ap }) {
			cands = append(cands, gate.Listener{NetNS: s.ns.File(), NetNSInode: ino, Addr: ap})
		}
	}
	return cands, nil
}
