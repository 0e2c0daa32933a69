package bpffs

import (
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Key names the pin directory of the backend's gate on l: one per backend
// and listener.
func Key(backend string, l gate.Listener) string { return backend + "_" + l.Key() }

// Pinned lists the listeners that have pins of the backend's gate.
func Pinned(backend string) ([]gate.Listener, error) { return Listeners(backend + "_") }

// Listeners returns the listeners whose pin directory names start with
// prefix, as Key names them: prefix + gate.Listener.Key().
func Listeners(prefix string) ([]gate.Listener, error) {
	keys, err := List()
	if err != nil {
		return nil, err
	}
	var ls []gate.Listener
	for _, k := range keys {
		key, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if ino, addr, err := gate.ParseKey(key); err == nil {
			ls = append(ls, gate.Listener{NetNSInode: ino, Addr: addr})
		}
	}
	return ls, nil
}

// RemoveNetNS removes the pin directories of every gate whose key names the
// network namespace with inode ino, and returns their keys. Tests use it to
// clear what a failed test left pinned for its namespace.
func RemoveNetNS(ino uint64) ([]string, error) {
	keys, err := List()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, k := range keys {
		_, key, ok := strings.Cut(k, "_") // the gate's prefix, then its Listener.Key
		if !ok {
			continue
		}
		if got, _, err := gate.ParseKey(key); err != nil || got != ino {
			continue
		}
		if err := Remove(k); err != nil {
			return removed, err
		}
		removed = append(removed, k)
	}
	return removed, nil
}
