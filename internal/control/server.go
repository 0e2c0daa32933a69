package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/sockdrain/sockdrain"
)

// Handler runs one drain for a client, sending each Report to report. ctx
// ends when the client goes away.
type Handler func(ctx context.Context, req Request, report func(sockdrain.Report)) (sockdrain.Report, error)

// Server serves drains on a control socket.
type Server struct {
	ln     *net.UnixListener
	path   string
	handle Handler
	wg     sync.WaitGroup
}

// Listen makes the control socket at path, 0600, creating its directory
// 0700 if it is missing. A directory another user owns, or anyone but its
// owner may write, is refused. A socket file nobody answers on is stale
// and replaced; one a live server answers on is an error.
func Listen(path string, h Handler) (*Server, error) {
	if err := makeDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict control socket: %w", err)
	}
	return &Server{ln: ln, path: path, handle: h}, nil
}

func makeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make control directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("check control directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("check control directory %s: want it owned by uid %d and writable by no one else (mode %v): %w",
			dir, os.Geteuid(), fi.Mode().Perm(), fs.ErrPermission)
	}
	return nil
}

// ErrInUse reports a control socket a live server answers on.
var ErrInUse = errors.New("control socket in use")

func removeStale(path string) error {
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen on control socket %s: another sockdrain run answers there (pick another --name): %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	return nil
}

// Path is where the server listens.
func (s *Server) Path() string { return s.path }

// Serve accepts clients until Close, serving each in its own goroutine.
func (s *Server) Serve(ctx context.Context) error {
	for {
		c, err := s.ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("accept on control socket: %w", err)
		}
		s.wg.Go(func() { s.serve(ctx, c) })
	}
}

// Close stops accepting, removes the socket file, and waits for the
// drains under way, whose contexts the caller must end.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) serve(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	enc := json.NewEncoder(c)
	if uid, err := peerUID(c); err != nil || uid != 0 {
		why := fmt.Errorf("%w: peer uid %d (%v)", errNotRoot, uid, err)
		enc.Encode(message{Result: &Result{Kind: kindOf(fs.ErrPermission), Error: why.Error()}})
		return
	}
	r := bufio.NewReader(c)
	var req Request
	line, err := r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { // the client closing its end cancels the drain
		r.ReadBytes('\n')
		cancel(errors.New("the control client went away"))
	}()
	s.drain(ctx, enc, req)
}

func (s *Server) drain(ctx context.Context, enc *json.Encoder, req Request) {
	var mu sync.Mutex
	send := func(m message) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(m)
	}
	rep, err := s.handle(ctx, req, func(r sockdrain.Report) { send(message{Report: &r}) })
	res := &Result{Report: rep, Kind: kindOf(err)}
	if err != nil {
		res.Error = err.Error()
	}
	send(message{Result: res})
}
