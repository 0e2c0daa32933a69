package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sockdrain/sockdrain/internal/backend"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// openGate opens the named gate on l, as the backend registry opens it.
func openGate(name string, l gate.Listener) (gate.Gate, error) {
	b, ok := backend.Find(name)
	if !ok {
		return nil, fmt.Errorf("open gate %q: unknown", name)
	}
	return b.Open(l)
}

// listenerOf describes srv's listener in ns as a gate sees it, with
// duplicates of its sockets; release closes them.
func listenerOf(ns *netns.NS, srv *demoserver.Server) (gate.Listener, func(), error) {
	ino, err := ns.Inode()
	if err != nil {
		return gate.Listener{}, nil, err
	}
	files, err := srv.Files()
	if err != nil {
		return gate.Listener{}, nil, err
	}
	release := func() { closeAll(files) }
	return gate.Listener{NetNS: ns.File(), NetNSInode: ino, Addr: srv.Addr(), Sockets: files}, release, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// armGate arms the gate through the gate package itself.
func (r *refuseRun) armGate() error {
	l, release, err := listenerOf(r.ns, r.srv)
	if err != nil {
		return err
	}
	g, err := openGate(r.gate, l)
	if err != nil {
		release()
		return err
	}
	r.open = func() error {
		defer release()
		return errors.Join(g.Disarm(), g.Close())
	}
	return g.Arm()
}
