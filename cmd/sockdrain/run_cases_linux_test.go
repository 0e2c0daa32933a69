package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

func TestRunDrainsUnderLoad(t *testing.T) {
	ns := nstest.New(t)
	before := snapshot(t, ns)
	ctl := filepath.Join(t.TempDir(), "ctl", "web.sock")
	p := startRun(t, ns, "--listen", "127.0.0.1:8080", "--control", ctl, "--", os.Args[0], childArg, "0")
	p.waitLine(t, "ready")
	load, err := loadgen.Start(t.Context(), loadgen.Config{Addr: "127.0.0.1:8080", Workers: 16, Duration: 20 * time.Second,
		MaxAttempts: 1_000_000, CheckBody: true, Dial: loadgen.DialIn(ns)})
	if err != nil {
		t.Fatal(err)
	}
	if !nstest.WaitFor(5*time.Second, func() bool { return load.Counts().Complete >= 200 }) {
		t.Fatalf("load: %+v, want 200 complete before draining", load.Counts())
	}
	out, code := drainThrough(t, ctl, "--json", "--timeout", "10s")
	if code != 0 || out[len(out)-1].Phase != sockdrain.Drained {
		t.Fatalf("drain --control: exit %d, reports %+v", code, out)
	}
	nstest.WaitFor(5*time.Second, func() bool { return load.Counts().Refused >= 10 })
	load.Stop()
	res, _ := load.Wait()
	c := res.Counts
	if c.Complete < 200 || c.Refused == 0 || c.Complete+c.Refused != res.Total {
		t.Errorf("load through a drain: %+v (samples %v), want only complete and refused", c, res.Samples)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("run exited %d, want the server's 0; stderr: %s", code, p.stderrText())
	}
	assertGone(t, ctl)
	if after := snapshot(t, ns); !reflect.DeepEqual(before, after) {
		t.Errorf("run left kernel state:\nbefore %+v\nafter  %+v", before, after)
	}
}

// drainThrough runs `sockdrain drain --control ctl args...` and returns its
// JSON reports and exit code.
func drainThrough(t *testing.T, ctl string, args ...string) ([]sockdrain.Report, int) {
	t.Helper()
	cmd := sockdrainCmd(append([]string{"drain", "--control", ctl}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	var reps []sockdrain.Report
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r struct {
			sockdrain.Report
			Elapsed float64 `json:"elapsed"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("drain printed %q: %v; stderr: %s", line, err, stderr.String())
		}
		reps = append(reps, r.Report)
	}
	return reps, cmd.ProcessState.ExitCode()
}

func assertGone(t *testing.T, ctl string) {
	t.Helper()
	if _, err := os.Stat(ctl); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("control socket %s left behind: %v", ctl, err)
	}
}

func TestRunPassesSocketsSignalsAndStatus(t *testing.T) {
	ns := nstest.New(t)
	ctl := filepath.Join(t.TempDir(), "web.sock")
	p := startRun(t, ns, "--listen", "127.0.0.1:8080", "--listen", "[::1]:8080", "--name", "web", "--control", ctl,
		"--", os.Args[0], childArg, "3")
	ready := p.waitLine(t, "ready")
	if !strings.HasSuffix(ready, " fds=2 names=web:web") || strings.Contains(ready, "pid="+strconv.Itoa(p.cmd.Process.Pid)) {
		t.Errorf("server says %q, want 2 sockets named web, and its own pid", ready)
	}
	nstest.Dial(t, ns, "[::1]:8080").Close()
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGQUIT} {
		p.signal(t, sig)
		p.waitLine(t, "got signal "+strconv.Itoa(int(sig)))
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 3 {
		t.Errorf("run exited %d, want the server's status 3; stderr: %s", code, p.stderrText())
	}
	if !strings.Contains(p.stderrText(), "exited with status 3") {
		t.Errorf("stderr %q does not say the server exited with 3", p.stderrText())
	}
	assertGone(t, ctl)
}

func TestRunExitsWithServersSignal(t *testing.T) {
	ns := nstest.New(t)
	p := startRun(t, ns, "--listen", "127.0.0.1:8080", "--control", filepath.Join(t.TempDir(), "x.sock"),
		"--", os.Args[0], childArg, "0")
	p.waitLine(t, "ready")
	p.signal(t, syscall.SIGINT) // the server dies of it
	if code := p.wait(t); code != 128+int(syscall.SIGINT) {
		t.Errorf("run exited %d, want %d; stderr: %s", code, 128+int(syscall.SIGINT), p.stderrText())
	}
}

func TestRunBadInput(t *testing.T) {
	ns := nstest.New(t)
	nstest.Listen(t, ns, "127.0.0.1:8081", nil)
	dir := t.TempDir()
	ctl, marker := filepath.Join(dir, "ctl", "x.sock"), filepath.Join(dir, "marker")
	for _, tc := range []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--listen", "127.0.0.1:8080", "--control", ctl}, "give the server to run"},
		{[]string{"--listen", "127.0.0.1:8080", "--control", ctl, "--"}, "give the server to run"},
		{[]string{"--control", ctl, "--", "touch", marker}, "give at least one --listen"},
		{[]string{"--listen", "localhost:8080", "--control", ctl, "--", "touch", marker}, "host must be an IP address"},
		{[]string{"--listen", "127.0.0.1:8081", "--control", ctl, "--", "touch", marker}, "address already in use"},
		{[]string{"--listen", "127.0.0.1:8080", "--control", ctl, "--", "no-such-server-x"}, "find the server"},
		{[]string{"--listen", "127.0.0.1:8080", "--name", "a:b", "--control", ctl, "--", "touch"}, "--name"},
	} {
		p := startRun(t, ns, tc.args...)
		code := p.wait(t)
		msg := strings.TrimSpace(p.stderrText())
		if code != 2 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("run %q: exit %d, stderr %q; want 2 and one line with %q", tc.args, code, msg, tc.want)
		}
		assertGone(t, ctl)
		assertGone(t, marker)
	}
	if c, err := nstest.DialErr(ns, "127.0.0.1:8080"); err == nil {
		c.Close()
		t.Error("a failed run left a listener on 127.0.0.1:8080")
	}
}

// TestRunControlRefusesNonRoot has a user who is not root ask for a drain:
// the 0700 directory stops it, and with the directory and socket opened
// up, the peer credentials check does.
func TestRunControlRefusesNonRoot(t *testing.T) {
	ns := nstest.New(t)
	bin := copyForNobody(t)
	ctl := filepath.Join(filepath.Dir(bin), "ctl", "x.sock")
	p := startRun(t, ns, "--listen", "127.0.0.1:8080", "--control", ctl, "--", os.Args[0], childArg, "0")
	p.waitLine(t, "ready")
	nobody := func() (string, int) {
		cmd := exec.Command(bin, "drain", "--control", ctl, "--timeout", "5s")
		cmd.Env = append(os.Environ(), runAsCLI+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := nobody(); code != exitUnsupported || !strings.Contains(out, "permission denied") {
		t.Errorf("uid 65534 through a 0700 directory: exit %d, %q; want %d, permission denied", code, out, exitUnsupported)
	}
	for p, mode := range map[string]os.FileMode{filepath.Dir(ctl): 0o755, ctl: 0o666} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if out, code := nobody(); code != exitUnsupported || !strings.Contains(out, "only root") {
		t.Errorf("uid 65534 on an open socket: exit %d, %q; want %d, only root", code, out, exitUnsupported)
	}
	if reps, code := drainThrough(t, ctl, "--json", "--timeout", "5s"); code != 0 || reps[len(reps)-1].Phase != sockdrain.Drained {
		t.Errorf("root after the refusals: exit %d, %+v", code, reps)
	}
}

// copyForNobody copies the test binary where uid 65534 can run it.
func copyForNobody(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sockdrain-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "sockdrain"), b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "sockdrain")
}
