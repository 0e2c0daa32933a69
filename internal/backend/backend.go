// Package backend holds one record per gate sockdrain can arm on this
// platform: its name, probe, opener, note, and where --backend auto tries
// it. Probe, auto, resume, status and the bench all read these records.
package backend

import (
	"fmt"
	"os"
	"slices"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Backend is one kind of gate, as the platform offers it.
type Backend struct {
	Name  string
	Probe func() error
	// Ready, if set, is what a drain checks before it opens the gate, in
	// place of Probe: cheaper, and leaving the kernel nothing to clean up
	// that would delay the arm. What it leaves out, the arm finds.
	Ready func() error
	Open  func(gate.Listener) (gate.Gate, error)
	// NeedsSockets: the gate acts on the listening socket itself, so it
	// needs a duplicate of it.
	NeedsSockets bool
	// Forget, if set, removes what is left of a gate whose listener is
	// gone, where Open cannot run without the listener's sockets.
	Forget func(gate.Listener) error
	// Pinned, if set, lists the listeners that have this gate's state.
	Pinned func() ([]gate.Listener, error)
	// PinnedOn, if set, reports whether l has this gate's state. Without
	// it no gate of this kind is armed on l, and Open need not run to
	// tell: Open may cost a program load and a walk of the sockets.
	PinnedOn func(l gate.Listener) (bool, error)
	// Note is what a user must know about the gate before relying on it.
	Note string
	// Why auto picks it.
	Why string
	// CookieBlind: the gate cannot see TCP flags, so auto tries it last
	// where every handshake may end in a SYN cookie (tcp_syncookies=2).
	CookieBlind bool
	// Warn, if set, says what the user must know about the namespace the
	// gate was armed in; each gate's own warnings come from gate.Warner.
	Warn func(netns *os.File, syncookies string) []string
}

// Check is what a drain checks before it opens b's gate: Ready, or Probe.
func (b Backend) Check() error {
	if b.Ready != nil {
		return b.Ready()
	}
	return b.Probe()
}

// Names lists the gates of this platform, in auto's default order.
func Names() []string {
	names := make([]string, len(All))
	for i, b := range All {
		names[i] = b.Name
	}
	return names
}

// Find returns the backend called name.
func Find(name string) (Backend, bool) {
	i := slices.IndexFunc(All, func(b Backend) bool { return b.Name == name })
	if i < 0 {
		return Backend{}, false
	}
	return All[i], true
}

// AutoOrder is the order --backend auto tries the gates in, given the
// namespace's tcp_syncookies: with "2", the cookie-blind gates go last.
func AutoOrder(syncookies string) []Backend {
	if syncookies != "2" {
		return All
	}
	order := slices.DeleteFunc(slices.Clone(All), func(b Backend) bool { return b.CookieBlind })
	for _, b := range All {
		if b.CookieBlind {
			order = append(order, b)
		}
	}
	return order
}

// Warnings are what the user must know about gates gs of b, just armed
// in netns: b's own, then each gate's, each said once.
func Warnings(b Backend, netns *os.File, syncookies string, gs []gate.Gate) []string {
	var w []string
	if b.Warn != nil {
		w = append(w, b.Warn(netns, syncookies)...)
	}
	for _, g := range gs {
		wr, ok := g.(gate.Warner)
		if !ok {
			continue
		}
		ws, err := wr.Warnings()
		if err != nil {
			ws = append(ws, fmt.Sprintf("could not check the %s gate for warnings: %v", b.Name, err))
		}
		for _, s := range ws {
			if !slices.Contains(w, s) {
				w = append(w, s)
			}
		}
	}
	return w
}
