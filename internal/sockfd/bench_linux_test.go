package sockfd

import (
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// The cost of finding one listener's owners, by each iterator program and
// by the /proc walk. All grow with the descriptors open on the host: run
// with sockets held elsewhere (`sockdrain-bench -hold N`) to see it.
func BenchmarkHolders(b *testing.B) {
	nstest.RequireAdmin(b)
	ns := nstest.New(b)
	ino := inodeOf(b, nstest.Listen(b, ns, "127.0.0.1:0", nil))
	byProgram := func(prog string) func([]uint64) (map[uint64][]Holder, error) {
		return func(inodes []uint64) (map[uint64][]Holder, error) { return readOwners(prog, inodes) }
	}
	for _, c := range []struct {
		name string
		find func([]uint64) (map[uint64][]Holder, error)
	}{
		{"tables", byProgram(ownersProgSdScanTables)},
		{"task_file", byProgram(ownersProgSdFindOwners)},
		{"proc", procHolders},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				found, err := c.find([]uint64{ino})
				if err != nil {
					b.Fatal(err)
				}
				if len(found[ino]) != 1 {
					b.Fatalf("found %v", found)
				}
			}
		})
	}
}
