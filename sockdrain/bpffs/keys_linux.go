package bpffs

import (
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Listeners returns the listeners whose pin directory names start with
// prefix, as a gate package names them: prefix + gate.Listener.Key().
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
