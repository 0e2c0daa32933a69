package gate

import (
	"fmt"
	"strconv"
	"strings"
)

// KernelVersion is a Linux kernel release: major, minor and patch level.
type KernelVersion struct {
	Major, Minor, Patch int
}

// Minimum is the oldest Linux kernel a gate runs on, and the kernel
// feature that makes it so.
type Minimum struct {
	Gate    string
	Version KernelVersion
	Feature string
}

// Minimums is the one table of the Linux gates' minimum kernels. The
// README's table says the same.
var Minimums = []Minimum{
	{Reuseport, KernelVersion{5, 10, 0}, "SK_REUSEPORT programs, and a task_file iterator (5.8) that finds foreign ones; the oldest kernel it is tested on"},
	{SKLookup, KernelVersion{5, 17, 0}, "SK_LOOKUP programs (5.9) and bpf_loop, which ties the gate to its listener"},
	{NFTables, KernelVersion{3, 18, 0}, "nf_tables inet tables with reject tcp reset (3.14) and rule user data for the gate's comment"},
}

// MinimumOf returns the minimum kernel of the gate called name.
func MinimumOf(name string) (Minimum, bool) {
	for _, m := range Minimums {
		if m.Gate == name {
			return m, true
		}
	}
	return Minimum{}, false
}

// ParseKernelVersion reads the version at the start of a kernel release
// string such as "6.12.95+deb12-cloud-amd64" or "6.1.0-56-cloud-amd64".
func ParseKernelVersion(release string) (KernelVersion, error) {
	head := release[:len(release)-len(strings.TrimLeft(release, "0123456789."))]
	parts := strings.Split(strings.TrimSuffix(head, "."), ".")
	var v [3]int
	for i, p := range parts[:min(len(parts), 3)] {
		n, err := strconv.Atoi(p)
		if err != nil || len(parts) < 2 {
			return KernelVersion{}, fmt.Errorf("parse kernel release %q: want MAJOR.MINOR[.PATCH]", release)
		}
		v[i] = n
	}
	return KernelVersion{v[0], v[1], v[2]}, nil
}

// Less reports whether v is older than w.
func (v KernelVersion) Less(w KernelVersion) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

// String formats v as MAJOR.MINOR.PATCH.
func (v KernelVersion) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Supports returns nil if the kernel v can run the gate m, and otherwise
// an error that names the gate, its minimum, the feature and v, and
// matches ErrNotSupported.
func (m Minimum) Supports(v KernelVersion) error {
	if v.Less(m.Version) {
		return fmt.Errorf("%s gate needs Linux %s (%s), kernel is %s: %w", m.Gate, m.Version, m.Feature, v, ErrNotSupported)
	}
	return nil
}
