package sockdrain

// FailProbe makes backend name's probe fail with err, as on a kernel that
// lacks what the gate needs, and returns a func that undoes it.
func FailProbe(name string, err error) (restore func()) {
	for i := range backends {
		if backends[i].name == name {
			old := backends[i].probe
			backends[i].probe = func() error { return err }
			return func() { backends[i].probe = old }
		}
	}
	panic("no backend " + name)
}
