package sockdrain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/sockdrain/sockdrain/internal/backend"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

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
	for _, b := range backend.All {
		s := BackendStatus{Name: b.Name, Available: true, Note: b.Note}
		if err := b.Probe(); err != nil {
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

// BackendNames lists the gates of this platform, in auto's default order.
func BackendNames() []string { return backend.Names() }

func findBackend(name string) (backend.Backend, error) {
	if b, ok := backend.Find(name); ok {
		return b, nil
	}
	return backend.Backend{}, invalidf("unknown backend %q: want auto, %s", name, strings.Join(BackendNames(), ", "))
}

// choose opens one gate per listener with the backend named want, or with
// the first of order that takes them all when want is "auto". It returns
// the gates, the backend, and why it was chosen.
func choose(order []backend.Backend, want string, ls []gate.Listener) (gates, backend.Backend, string, error) {
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
			return gs, b, strings.Join(append([]string{b.Why}, passed...), "; "), nil
		}
		passed = append(passed, fmt.Sprintf("not %s: %v", b.Name, err))
	}
	return nil, backend.Backend{}, "", fmt.Errorf("%w: no gate can serve this listener: %s", ErrNotSupported, strings.Join(passed, "; "))
}

// openAll opens b's gate on every listener, or none. Errors say whether
// the listener is at fault (ErrInvalid) or the kernel (ErrNotSupported).
func openAll(b backend.Backend, ls []gate.Listener) (gates, error) {
	if err := b.Check(); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, notPermitted(b.Name, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	var gs gates
	for _, l := range ls {
		if b.NeedsSockets && len(l.Sockets) == 0 {
			gs.close()
			return nil, invalidf("%s gate needs the listening socket of %s, and it could not be taken from its process", b.Name, l.Addr)
		}
		g, err := b.Open(l)
		if err != nil {
			gs.close()
			return nil, classify("open", b.Name, err)
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// classify says whether the listener (ErrInvalid) or the kernel
// (ErrNotSupported) is at fault for err, which doing what to the gate
// called name returned.
func classify(what, name string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return notPermitted(name, fmt.Errorf("%s: %w", what, err))
	}
	err = fmt.Errorf("%s %s gate: %w", what, name, err)
	switch {
	case errors.Is(err, gate.ErrNotEligible):
		return inputError{err}
	case errors.Is(err, gate.ErrNotSupported):
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	return err
}

// notPermitted says what a gate needs that this process lacks.
func notPermitted(name string, err error) error {
	return fmt.Errorf("%s gate: not permitted: run as root with CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN: %w", name, err)
}

// joinArmed finds a gate of ours left armed on ls by an earlier drain. A
// drain joins it rather than arm a second gate: it returns that backend,
// and whether there was one. It refuses to arm a different backend. The
// gates it opened to look go to opened, which the caller closes once its
// own gate refuses (see armedOn).
func joinArmed(ls []gate.Listener, want string, opened *gates) (string, bool, error) {
	var armed []string
	for _, gl := range ls {
		for _, name := range armedOn(gl, opened) {
			if !slices.Contains(armed, name) {
				armed = append(armed, name)
			}
		}
	}
	switch {
	case len(armed) == 0:
		return want, false, nil
	case len(armed) == 1 && (want == "auto" || want == armed[0]):
		return armed[0], true, nil
	}
	return "", false, fmt.Errorf("%w: the %s gate of an earlier drain is still armed; run resume first, or drain with --backend %s to join it",
		ErrBusy, strings.Join(armed, " and "), armed[0])
}

// ArmedGates fills in each listener's Gates: the gates of ours armed on it
// now, whichever process armed them. It takes the sockets it needs from
// the listeners' PIDs, when Status filled them in.
func ArmedGates(t Target, ls []Listener) error {
	s, err := openSession(t, func(l Listener) ([]*os.File, error) {
		for _, known := range ls {
			if known.Listen == l.Listen && len(known.PIDs) > 0 {
				return grabIn(l, known.PIDs), nil
			}
		}
		return grabFrom(0, nil)(l)
	}, true)
	if err != nil {
		return err
	}
	defer s.close()
	for i := range ls {
		ls[i].Gates = []string{}
		for _, gl := range s.gls {
			if gl.Addr == ls[i].Listen {
				ls[i].Gates = armedOn(gl, nil)
			}
		}
	}
	return nil
}

// armedOn lists the backends whose gate is armed on gl. It opens a gate
// of each to ask, and closes it, or adds it to opened when that is set:
// closing a netfilter socket can wait on the kernel (see
// backend.openChecks), which a drain does only once its gate refuses.
func armedOn(gl gate.Listener, opened *gates) []string {
	armed := []string{}
	for _, b := range backend.All {
		if b.NeedsSockets && len(gl.Sockets) == 0 {
			continue
		}
		if b.PinnedOn != nil {
			if pinned, err := b.PinnedOn(gl); err == nil && !pinned {
				continue
			}
		}
		g, err := b.Open(gl)
		if err != nil {
			continue
		}
		if ok, _ := g.Armed(); ok {
			armed = append(armed, b.Name)
		}
		if opened != nil {
			*opened = append(*opened, g)
		} else {
			g.Close()
		}
	}
	return armed
}

// gates disarms and closes a set of gate.Gate as one.
type gates []gate.Gate

// disarm opens b's gate on gl and disarms it, reporting whether it was
// armed. A gate that cannot be opened on gl holds nothing to disarm.
func disarm(b backend.Backend, gl gate.Listener) (bool, error) {
	if b.NeedsSockets && len(gl.Sockets) == 0 {
		if b.Forget != nil {
			return false, b.Forget(gl)
		}
		return false, nil
	}
	g, err := b.Open(gl)
	if err != nil {
		return false, nil
	}
	defer g.Close()
	armed, _ := g.Armed()
	if err := g.Disarm(); err != nil {
		return armed, fmt.Errorf("disarm %s gate on %s: %w", b.Name, gl.Addr, err)
	}
	return armed, nil
}
