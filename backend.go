package sockdrain

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// backend is one kind of gate, as the platform offers it.
type backend struct {
	name  string
	probe func() error
	open  func(gate.Listener) (gate.Gate, error)
	// needsSockets: the gate acts on the listening socket itself, so it
	// needs a duplicate of it.
	needsSockets bool
	// forget, if set, removes what is left of a gate whose listener is
	// gone, where open cannot run without the listener's sockets.
	forget func(gate.Listener) error
	// pinned, if set, lists the listeners that have this gate's state.
	pinned func() ([]gate.Listener, error)
	// why auto picks it.
	why string
}

// BackendStatus says whether a gate works on this kernel.
type BackendStatus struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Reason is why it is missing, when it is.
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note"`
}

// Probe reports, for this kernel, which gates can be loaded and why any
// cannot. It changes nothing on the system.
func Probe() []BackendStatus {
	var st []BackendStatus
	for _, b := range backends {
		s := BackendStatus{Name: b.name, Available: true, Note: notes[b.name]}
		if err := b.probe(); err != nil {
			s.Available, s.Reason = false, err.Error()
		}
		st = append(st, s)
	}
	return st
}

// ProbeFeatures reports, for this kernel, whether the drain's other
// features work: close-idle (Options.CloseIdle). It changes nothing.
func ProbeFeatures() []BackendStatus {
	s := BackendStatus{Name: "close-idle", Available: true,
		Note: "needs pidfd_getfd (Linux 5.6) and ptrace access to the server; suits request/response protocols " +
			"such as HTTP/1.1, not connections quiet by design (WebSocket, SSE, HTTP/2, gRPC, database sessions): use --stop there"}
	if err := probeCloseIdle(); err != nil {
		s.Available, s.Reason = false, err.Error()
	}
	return []BackendStatus{s}
}

// notes are what a user must know about each gate before relying on it.
var notes = map[string]string{
	"reuseport": "needs SO_REUSEPORT set before bind and a non-MPTCP socket; refuses only pure SYNs, so SYN-cookie handshakes complete",
	"sklookup": "works on any listener, MPTCP too; cannot see TCP flags, so with SYN cookies in use a handshake completed " +
		"after arming gets ECONNRESET; another sk_lookup program that assigns sockets overrides it",
	"nftables": "works on any listener and refuses only pure SYNs; opens by itself when the listener closes only if sockdrain could mark its socket (tied), otherwise run resume",
	"pf":       "refuses only SYNs (flags S/SA); needs anchor \"sockdrain/*\" before pf.conf's pass rules; loopback bypasses it under 'set skip on lo0'",
	"ipfw":     "refuses only SYNs (setup); with pf enabled, it also loads pf rules that keep no state for those SYNs, which need pf's sockdrain anchor",
	"shutdown": "FreeBSD 10 and older only; one-way: the socket stays refusing until closed",
}

// BackendNames lists the gates of this platform, in auto's default order.
func BackendNames() []string {
	names := make([]string, len(backends))
	for i, b := range backends {
		names[i] = b.name
	}
	return names
}

func findBackend(name string) (backend, error) {
	for _, b := range backends {
		if b.name == name {
			return b, nil
		}
	}
	return backend{}, invalidf("unknown backend %q: want auto, %s", name, strings.Join(BackendNames(), ", "))
}

// choose opens one gate per listener with the backend named want, or with
// the first of order that takes them all when want is "auto". It returns
// the gates, the backend, and why it was chosen.
func choose(order []backend, want string, ls []gate.Listener) (gates, backend, string, error) {
	if want != "auto" {
		b, err := findBackend(want)
		if err != nil {
			return nil, b, "", err
		}
		gs, err := openAll(b, ls)
		return gs, b, "asked for", err
	}
	var passed []string
	for _, b := range order {
		gs, err := openAll(b, ls)
		if err == nil {
			return gs, b, strings.Join(append([]string{b.why}, passed...), "; "), nil
		}
		passed = append(passed, fmt.Sprintf("not %s: %v", b.name, err))
	}
	return nil, backend{}, "", fmt.Errorf("%w: no gate can serve this listener: %s", ErrNotSupported, strings.Join(passed, "; "))
}

// openAll opens b's gate on every listener, or none. Errors say whether
// the listener is at fault (ErrInvalid) or the kernel (ErrNotSupported).
func openAll(b backend, ls []gate.Listener) (gates, error) {
	if err := b.probe(); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%s gate: not permitted: run as root with CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN: %w", b.name, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	var gs gates
	for _, l := range ls {
		if b.needsSockets && len(l.Sockets) == 0 {
			gs.close()
			return nil, invalidf("%s gate needs the listening socket of %s, and it could not be taken from its process", b.name, l.Addr)
		}
		g, err := b.open(l)
		if err != nil {
			gs.close()
			return nil, classify(b.name, err)
		}
		gs = append(gs, g)
	}
	return gs, nil
}

func classify(name string, err error) error {
	switch {
	case errors.Is(err, gate.ErrNotEligible):
		return inputError{fmt.Errorf("%s gate: %w", name, err)}
	case errors.Is(err, gate.ErrNotSupported):
		return fmt.Errorf("%w: %s gate: %w", ErrNotSupported, name, err)
	}
	return fmt.Errorf("open %s gate: %w", name, err)
}
