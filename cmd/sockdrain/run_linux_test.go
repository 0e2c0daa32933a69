package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/listenfd"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/sockfd"
	"github.com/sockdrain/sockdrain/internal/supervisor"
)

// The test binary is also the programs the run tests start: `sockdrain`
// itself when envTestCLI is set, and a small server on LISTEN_FDS when its
// first argument is childArg.
const (
	childArg  = "sockdrain-test-child"
	childBody = 1000
)

// childShutdown, as the child's status, makes its first SIGTERM shut its
// listening sockets down (shutdown(SHUT_RD), which stops them listening
// in every process that holds them) and keeps it running; the second makes
// it exit 0.
const childShutdown = "shutdown"

// childStall, as the child's status, makes it accept nothing; SIGTERM
// makes it exit 0. A client it leaves queued holds a drain until its end.
const childStall = "stall"

// childServer serves HTTP/1.0 on the sockets passed by LISTEN_FDS. It
// prints "ready", then "got signal N" for each forwarded signal; SIGTERM
// makes it exit with status, and SIGINT kills it by that signal.
func childServer(status string) int {
	files, err := listenfd.Files()
	if err != nil {
		fmt.Println("child:", err)
		return 90
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, supervisor.Forwarded...)
	var names []string
	for _, f := range files {
		ln, err := net.FileListener(f)
		if err != nil {
			fmt.Println("child:", err)
			return 91
		}
		names = append(names, f.Name())
		if status != childStall {
			go serveHTTP(ln)
		}
	}
	fmt.Printf("ready pid=%d fds=%d names=%s\n", os.Getpid(), len(files), strings.Join(names, ":"))
	for sig := range sigs {
		fmt.Printf("got signal %d\n", sig)
		switch sig {
		case syscall.SIGTERM:
			if status == childShutdown {
				status = "0"
				for _, f := range files {
					sockfd.Control(f, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) })
				}
				fmt.Println("listeners shut down")
				continue
			}
			var code int
			fmt.Sscan(status, &code)
			return code
		case syscall.SIGINT:
			signal.Reset(syscall.SIGINT)
			syscall.Kill(os.Getpid(), syscall.SIGINT)
		}
	}
	return 92
}

func serveHTTP(ln net.Listener) {
	body := make([]byte, childBody)
	loadgen.FillBody(body)
	resp := append(fmt.Appendf(nil, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n", childBody), body...)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			c.Write(resp)
		}()
	}
}

// runProc is a `sockdrain run` the test started.
type runProc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *os.File // a file, so Wait does not wait for a server holding it
	done   chan struct{}
	code   int
	child  int // the server's pid, once it said ready
}

// sockdrainCmd is the test binary as the sockdrain CLI with args.
func sockdrainCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsCLI+"=1")
	return cmd
}

// startRun starts `sockdrain run args...` inside ns, where the sockets and
// the server belong. Cleanup kills both.
func startRun(t *testing.T, ns *netns.NS, args ...string) *runProc {
	t.Helper()
	p := &runProc{cmd: sockdrainCmd(append([]string{"run"}, args...)...), lines: make(chan string, 100),
		done: make(chan struct{})}
	var err error
	if p.stderr, err = os.CreateTemp(t.TempDir(), "stderr"); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, p.stderr
	err = ns.Do(p.cmd.Start)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// waitLine waits for a line of the server's output that starts with prefix.
func (p *runProc) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	done := p.done
	for {
		select {
		case line := <-p.lines:
			if strings.HasPrefix(line, "ready pid=") {
				fmt.Sscanf(line, "ready pid=%d", &p.child)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-done: // what it printed before exiting may still be in the pipe
			done, timeout = nil, time.After(time.Second)
		case <-timeout:
			t.Fatalf("no line %q from the server; run exited: %v, code %d, stderr: %s", prefix, done == nil, p.code, p.stderrText())
		}
	}
}

// wait waits for run to exit and returns its exit code.
func (p *runProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(10 * time.Second):
		t.Fatalf("sockdrain run did not exit in 10s; stderr: %s", p.stderrText())
	}
	return -1
}

// stop ends run as a person would, with SIGTERM, so that it resumes the
// gates its drains left; after five seconds it kills the server and run.
func (p *runProc) stop() {
	defer p.stderr.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	if p.child != 0 {
		syscall.Kill(p.child, syscall.SIGKILL)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stderrText is what run wrote to stderr so far.
func (p *runProc) stderrText() string {
	b, _ := os.ReadFile(p.stderr.Name())
	return string(b)
}

func (p *runProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}
