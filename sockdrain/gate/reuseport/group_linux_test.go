package reuseport

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/internal/testutil/gatetest"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// TestGroupProgramReadsOwnFilesOnly: the listener iterator reports the
// socket from this process's descriptors alone, not from the server's
// (another process holds the socket too), so its cost does not grow with
// the descriptors of the host. Linux 6.1 limits an iterator to one
// process; older kernels walk them all.
func TestGroupProgramReadsOwnFilesOnly(t *testing.T) {
	gatetest.RequireKernel(t, gate.Reuseport)
	ns := nstest.New(t)
	srv := ours.Listen(t, ns, gatetest.ListenOpts{Network: "tcp4", Addr: "127.0.0.1:0", Sockets: 1, ReusePort: true})
	f := srv.Listener.Sockets[0]
	child := exec.Command("sleep", "60")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()

	var st unix.Stat_t
	if err := sockfd.Control(f, func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		t.Fatal(err)
	}
	objs, err := loadIterObjects(st.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	records, err := readOwnFiles(objs.Prog)
	if err != nil {
		t.Fatal(err)
	}
	// This process holds the socket twice: the server's listener and the
	// gate's duplicate. From 6.1 the child's descriptor is not walked.
	want := 2
	if v, err := gate.RunningKernel(); err != nil {
		t.Fatal(err)
	} else if v.Less(gate.KernelVersion{Major: 6, Minor: 1}) {
		want = 3
	}
	if len(records) != want {
		t.Fatalf("%d records, want %d (this process's two descriptors of the socket, and the child's before 6.1): %+v", len(records), want, records)
	}
	for _, r := range records {
		if r.Inode != st.Ino || r.Listening == 0 || r.InGroup == 0 {
			t.Errorf("record %+v: want inode %d, listening, in a reuseport group", r, st.Ino)
		}
	}
}
