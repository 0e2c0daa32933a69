package sockfd

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// inodeOf is the socket inode of l.
func inodeOf(t testing.TB, l *net.TCPListener) uint64 {
	t.Helper()
	rc, err := l.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	rc.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) })
	if err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// The iterator and the /proc walk find the same holders: a child that
// holds one listener, and this process, which holds another.
func TestIteratorAgreesWithProc(t *testing.T) {
	nstest.RequireAdmin(t)
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	ino := inodeOf(t, ln)
	child := nstest.HoldInChild(t, ln)
	other := inodeOf(t, nstest.Listen(t, ns, "127.0.0.1:0", nil))

	viaProc, err := procHolders([]uint64{ino, other})
	if err != nil {
		t.Fatal(err)
	}
	viaIter, err := iterHolders([]uint64{ino, other})
	if err != nil {
		t.Fatalf("iterator: %v", err)
	}
	sortHolders(viaProc)
	sortHolders(viaIter)
	if !holdersEqual(viaProc, viaIter) {
		t.Fatalf("iterator found %v, /proc %v", viaIter, viaProc)
	}
	// Each of the two programs, whichever iterHolders chose.
	for _, prog := range []string{ownersProgSdScanTables, ownersProgSdFindOwners} {
		found, err := readOwners(prog, []uint64{ino, other})
		if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		sortHolders(found)
		if !holdersEqual(viaProc, found) {
			t.Fatalf("%s found %v, /proc %v", prog, found, viaProc)
		}
	}
	pids, err := PIDs([]uint64{ino})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{child.Process.Pid}) {
		t.Fatalf("PIDs = %v, want the child %d", pids, child.Process.Pid)
	}
	if len(viaIter[other]) != 1 || viaIter[other][0].PID != os.Getpid() {
		t.Fatalf("iterator found %v for this process's listener", viaIter[other])
	}
}

func sortHolders(m map[uint64][]Holder) {
	for _, hs := range m {
		slices.SortFunc(hs, func(a, b Holder) int { return a.PID - b.PID })
	}
}

func holdersEqual(a, b map[uint64][]Holder) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// A socket nobody holds any more is not found, and neither is a file of
// another file system that shares its inode number.
func TestIteratorFindsOnlySockets(t *testing.T) {
	nstest.RequireAdmin(t)
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(bin, &st); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(bin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	found, err := iterHolders([]uint64{st.Ino})
	if err != nil {
		t.Fatalf("iterator: %v", err)
	}
	if len(found) != 0 {
		t.Fatalf("iterator found %v for the inode of %s, not a socket", found, bin)
	}
}

// FirstHolders finds one holder of each socket, whoever holds it, and
// leaves out a socket nobody holds.
func TestFirstHolders(t *testing.T) {
	nstest.RequireAdmin(t)
	ns := nstest.New(t)
	ln := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	ino := inodeOf(t, ln)
	child := nstest.HoldInChild(t, ln)
	mine := inodeOf(t, nstest.Listen(t, ns, "127.0.0.1:0", nil))
	gone := nstest.Listen(t, ns, "127.0.0.1:0", nil)
	goneIno := inodeOf(t, gone)
	gone.Close()

	first, err := FirstHolders([]uint64{ino, mine, goneIno})
	if err != nil {
		t.Fatal(err)
	}
	if first[ino].PID != child.Process.Pid || first[mine].PID != os.Getpid() || len(first) != 2 {
		t.Fatalf("FirstHolders = %v, want %d for %d, %d for %d, nothing for %d",
			first, child.Process.Pid, ino, os.Getpid(), mine, goneIno)
	}
}
