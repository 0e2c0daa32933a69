package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/internal/rig/nginxconf"
)

// nginxPort is where nginx listens in its own namespace.
const nginxPort = 8080

// nginxStop is Debian's nginx, stopped by `nginx -s quit`.
type nginxStop struct {
	dir  string
	cmd  *exec.Cmd
	done chan error
}

func startNginx(ns *netns.NS) (server, error) {
	dir, err := nginxDir()
	if err != nil {
		return nil, err
	}
	n := &nginxStop{dir: dir, done: make(chan error, 1)}
	n.cmd = exec.Command("nginx", n.args()...)
	n.cmd.Stderr = os.Stderr
	// Forked from a thread inside ns, nginx starts there.
	if err := ns.Do(n.cmd.Start); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	if err := waitListening(ns, n.Addr(), 5*time.Second); err != nil {
		n.cmd.Process.Kill()
		<-n.done
		os.RemoveAll(dir)
		return nil, err
	}
	return n, nil
}

// nginxDir writes the config and the body into a new directory that
// nginx's unprivileged workers can read.
func nginxDir() (string, error) {
	dir, err := os.MkdirTemp("", "sockdrain-bench-nginx-")
	if err != nil {
		return "", err
	}
	body := make([]byte, bodySize)
	loadgen.FillBody(body)
	err = nginxconf.Write(dir, nginxconf.Config{Listen: fmt.Sprintf("127.0.0.1:%d", nginxPort), Workers: 2, Connections: 4096},
		map[string][]byte{"body": body})
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func (n *nginxStop) args() []string { return nginxconf.Args(n.dir) }

func (n *nginxStop) Addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), nginxPort)
}

func (n *nginxStop) Path() string { return "/body" }

// Stop runs `nginx -s quit` and waits for the master to exit.
func (n *nginxStop) Stop() error {
	defer os.RemoveAll(n.dir)
	out, err := exec.Command("nginx", append(n.args(), "-s", "quit")...).CombinedOutput()
	if err != nil {
		n.cmd.Process.Kill()
		<-n.done
		return fmt.Errorf("nginx -s quit: %w: %s", err, out)
	}
	select {
	case err := <-n.done:
		return err
	case <-time.After(stopTimeout):
		n.cmd.Process.Kill()
		<-n.done
		return fmt.Errorf("nginx did not quit within %s", stopTimeout)
	}
}

// waitListening waits until a connection to addr in ns succeeds.
func waitListening(ns *netns.NS, addr netip.AddrPort, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp4", addr.String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s to listen: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
