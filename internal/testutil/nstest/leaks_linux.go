package nstest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// leakGrace is how long fds may take to close after the tests end: a
// goroutine a test left behind may still be closing its connection.
const leakGrace = time.Second

// CheckLeaks runs m and returns its exit code, or 1 with a list on stderr
// when file descriptors opened during the run are still open after it.
// Use it in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(nstest.CheckLeaks(m)) }
//
// A fuzzing run (the coordinator and its workers) is not checked: the
// fuzzing engine's own pipes and shared memory outlive m.Run, and a
// worker that lingers for the grace period makes the coordinator fail.
func CheckLeaks(m *testing.M) int {
	if fuzzing() {
		return m.Run()
	}
	warmUp()
	before, err := OpenFDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "check leaks: %v\n", err)
		return 1
	}
	code := m.Run()
	var leaked []string
	for deadline := time.Now().Add(leakGrace); ; time.Sleep(10 * time.Millisecond) {
		after, err := OpenFDs()
		if err != nil {
			fmt.Fprintf(os.Stderr, "check leaks: %v\n", err)
			return 1
		}
		if leaked = Leaked(before, after); len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d file descriptor(s) leaked by the tests:\n  %s\n",
			len(leaked), strings.Join(leaked, "\n  "))
		return 1
	}
	return code
}

// fuzzing reports whether the test binary runs as a fuzzing coordinator
// or worker (-test.fuzz=…, -test.fuzzworker).
func fuzzing() bool {
	return slices.ContainsFunc(os.Args[1:], func(a string) bool {
		return strings.HasPrefix(a, "-test.fuzz=") || strings.HasPrefix(a, "-test.fuzzworker")
	})
}

// warmUp makes the Go runtime open the fds it keeps for the life of the
// process, the netpoller's epoll and wake-up fds, so they are not taken
// for leaks.
func warmUp() {
	r, w, err := os.Pipe() // pollable: initialises the netpoller
	if err == nil {
		r.Close()
		w.Close()
	}
}

// OpenFDs maps each open file descriptor of this process to what it
// refers to, as readlink of /proc/self/fd/N shows it.
func OpenFDs() (map[int]string, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list open fds: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list open fds: %w", err)
	}
	fds := make(map[int]string, len(names))
	for _, name := range names {
		fd, _ := strconv.Atoi(name)
		if target, err := os.Readlink("/proc/self/fd/" + name); err == nil {
			fds[fd] = target // the fd reading the directory is gone by now
		}
	}
	delete(fds, int(d.Fd()))
	return fds, nil
}

// Leaked lists the fds open in after that were not open, to the same
// target, in before, as "fd N -> TARGET", lowest first.
func Leaked(before, after map[int]string) []string {
	var fds []int
	for fd, target := range after {
		if before[fd] != target {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	leaked := make([]string, len(fds))
	for i, fd := range fds {
		leaked[i] = fmt.Sprintf("fd %d -> %s", fd, after[fd])
	}
	return leaked
}
