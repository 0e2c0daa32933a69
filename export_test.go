package sockdrain

import "github.com/sockdrain/sockdrain/internal/backend"

// FailProbe makes backend name's probe fail with err, as on a kernel that
// lacks what the gate needs, and returns a func that undoes it.
func FailProbe(name string, err error) (restore func()) {
	for i := range backend.All {
		if backend.All[i].Name == name {
			old := backend.All[i].Probe
			backend.All[i].Probe = func() error { return err }
			return func() { backend.All[i].Probe = old }
		}
	}
	panic("no backend " + name)
}
