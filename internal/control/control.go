// Package control is how `sockdrain drain` asks a `sockdrain run` process
// to drain the listening sockets it owns: a unix stream socket, one JSON
// request line from the client, then JSON lines back, one per Report as
// the drain makes it and a final one with the result.
//
// Only root may use it. The socket is made 0600 in a directory sockdrain
// makes 0700 (DefaultDir), and the server checks each peer's credentials
// (SO_PEERCRED on Linux, LOCAL_PEERCRED on FreeBSD) and refuses any uid
// but 0 before it reads a byte.
//
// If the client goes away mid-drain, the server cancels the drain, which
// then rolls its gate back unless the request said KeepGate.
package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sockdrain/sockdrain"
)

// Path is the control socket of name: name itself when it holds a '/',
// else DefaultDir/name.sock.
func Path(name string) string {
	if filepath.Base(name) != name {
		return name
	}
	return filepath.Join(DefaultDir, name+".sock")
}

// Request asks the server to drain. The fields mirror `sockdrain drain`'s
// flags.
type Request struct {
	// Listen (HOST:PORT) or Port picks among the server's sockets; both
	// empty means all of them, when they share one port.
	Listen   string        `json:"listen,omitempty"`
	Port     string        `json:"port,omitempty"`
	Backend  string        `json:"backend,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
	Stall    time.Duration `json:"stall,omitempty"`
	NoVerify bool          `json:"no_verify,omitempty"`
	KeepGate bool          `json:"keep_gate,omitempty"`
	// Stop is a command the server runs with /bin/sh -c once the backlog
	// is empty; StopSignal a signal it sends its child then.
	Stop       string        `json:"stop,omitempty"`
	StopSignal int           `json:"stop_signal,omitempty"`
	CloseIdle  bool          `json:"close_idle,omitempty"`
	Idle       time.Duration `json:"idle,omitempty"`
}

// message is one line from server to client: a Report as it happens, or
// the final Result.
type message struct {
	Report *sockdrain.Report `json:"report,omitempty"`
	Result *Result           `json:"result,omitempty"`
}

// Result ends a drain.
type Result struct {
	Report sockdrain.Report `json:"final"`
	// Kind names the error the drain ended with (see kindOf); empty on
	// success.
	Kind string `json:"kind,omitempty"`
	// Error says what went wrong; empty on success.
	Error string `json:"error,omitempty"`
}

// RemoteError is a drain that failed in the server. It matches the error
// its kind names, as the server's error did.
type RemoteError struct {
	Kind    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Is matches the error e's kind stands for.
func (e *RemoteError) Is(target error) bool {
	err := errorOf(e.Kind)
	return err != nil && err == target
}

// errNotRoot is what a peer that is not root is told.
var errNotRoot = errors.New("only root may use this control socket")

// decodeMessage reads one line.
func decodeMessage(line []byte) (message, error) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return message{}, fmt.Errorf("decode control message: %w", err)
	}
	return m, nil
}
