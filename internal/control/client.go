package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"

	"github.com/sockdrain/sockdrain"
)

// ErrNoServer reports a control socket that no server answers on. It
// wraps sockdrain.ErrInvalid: the path named no running `sockdrain run`.
var ErrNoServer = fmt.Errorf("no sockdrain run answers on this control socket: %w", sockdrain.ErrInvalid)

// Drain asks the server on path to drain, passing every Report to
// onReport, and returns the final Report. A failed drain is a
// *RemoteError. Cancelling ctx closes the connection, which makes the
// server cancel the drain.
func Drain(ctx context.Context, path string, req Request, onReport func(sockdrain.Report)) (sockdrain.Report, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return sockdrain.Report{}, dialError(path, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// A server that refuses this peer answers before reading the
	// request, and may have closed already: its answer says more than
	// the failed write.
	werr := json.NewEncoder(c).Encode(req)
	res, err := receive(c, onReport)
	if err != nil && werr != nil {
		return sockdrain.Report{}, fmt.Errorf("send drain request to %s: %w", path, werr)
	}
	if ctx.Err() != nil {
		return res.Report, context.Cause(ctx)
	}
	if err != nil {
		return res.Report, fmt.Errorf("read drain from %s: %w", path, err)
	}
	if res.Kind != "" {
		return res.Report, &RemoteError{Kind: res.Kind, Message: res.Error}
	}
	return res.Report, nil
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("connect to control socket %s: %w", path, err)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connect to control socket %s: %w", path, ErrNoServer)
	}
	return fmt.Errorf("connect to control socket %s: %w", path, err)
}

// receive reads messages until the Result.
func receive(c net.Conn, onReport func(sockdrain.Report)) (Result, error) {
	sc := bufio.NewScanner(c)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		m, err := decodeMessage(sc.Bytes())
		if err != nil {
			return Result{}, err
		}
		if m.Result != nil {
			return *m.Result, nil
		}
		if m.Report != nil && onReport != nil {
			onReport(*m.Report)
		}
	}
	if err := sc.Err(); err != nil {
		return Result{}, err
	}
	return Result{}, errors.New("the server closed the connection before the result")
}
