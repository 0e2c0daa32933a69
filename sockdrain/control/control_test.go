package control

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain"
)

func TestPath(t *testing.T) {
	// Linux keeps run-time files in /run; FreeBSD has no /run, only /var/run.
	want := map[string]string{"linux": "/run/sockdrain/web.sock", "freebsd": "/var/run/sockdrain/web.sock"}[runtime.GOOS]
	if want == "" {
		want = filepath.Join(DefaultDir, "web.sock")
	}
	if got := Path("web"); got != want {
		t.Errorf("Path(web) = %s, want %s", got, want)
	}
	if got := Path("/tmp/x.sock"); got != "/tmp/x.sock" {
		t.Errorf("Path(/tmp/x.sock) = %s", got)
	}
}

func TestDecodeMessage(t *testing.T) {
	rep := sockdrain.Report{Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Elapsed: sockdrain.Duration(1234567 * time.Microsecond),
		Event: sockdrain.EventProgress, Phase: sockdrain.Gated, Backend: "sklookup", Counts: sockdrain.Counts{AcceptQueue: 3, UnackedBytes: 9},
		Remaining: []sockdrain.Conn{{Peer: "127.0.0.1:5", State: "ESTABLISHED", Unacked: 1}}}
	for _, m := range []message{{Report: &rep}, {Result: &Result{Report: rep, Exit: 3, Error: "drain timed out"}}} {
		line, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMessage(line)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(got)
		if string(again) != string(line) {
			t.Errorf("round trip:\n got %s\nwant %s", again, line)
		}
	}
	if _, err := decodeMessage([]byte(`{"report":`)); err == nil {
		t.Error("decodeMessage of a cut line: no error")
	}
}

func TestRemoteErrorIs(t *testing.T) {
	for code, want := range map[int]error{2: sockdrain.ErrInvalid, 3: sockdrain.ErrTimeout, 4: sockdrain.ErrNotSupported, 5: sockdrain.ErrListenerClosed} {
		if err := (&RemoteError{Exit: code}); !errors.Is(err, want) {
			t.Errorf("RemoteError{%d} is not %v", code, want)
		}
	}
	if errors.Is(&RemoteError{Exit: 6}, sockdrain.ErrInvalid) || errors.Is(&RemoteError{Exit: 2}, sockdrain.ErrTimeout) {
		t.Error("RemoteError matches an error its code does not stand for")
	}
}

// TestServeDrain runs a client against a server with a fake drain: as
// root it gets every report and the result; as anyone else it is refused.
func TestServeDrain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl", "x.sock")
	var got Request
	h := func(ctx context.Context, req Request, report func(sockdrain.Report)) (sockdrain.Report, error) {
		got = req
		report(sockdrain.Report{Phase: sockdrain.Gated})
		report(sockdrain.Report{Phase: sockdrain.BacklogEmpty})
		return sockdrain.Report{Phase: sockdrain.TimedOut}, sockdrain.ErrTimeout
	}
	srv, err := Listen(path, h, func(err error) int { return map[bool]int{true: 3, false: 1}[errors.Is(err, sockdrain.ErrTimeout)] })
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(t.Context())
	checkModes(t, path)
	var phases []sockdrain.Phase
	rep, err := Drain(t.Context(), path, Request{Port: "80", Timeout: time.Second}, func(r sockdrain.Report) { phases = append(phases, r.Phase) })
	if os.Geteuid() != 0 {
		if !errors.As(err, new(*RemoteError)) || err.(*RemoteError).Exit == 0 || len(phases) > 0 {
			t.Fatalf("as uid %d: Drain = %v after %v, want refused", os.Geteuid(), err, phases)
		}
		return
	}
	if !errors.Is(err, sockdrain.ErrTimeout) || rep.Phase != sockdrain.TimedOut || len(phases) != 2 || got.Port != "80" || got.Timeout != time.Second {
		t.Errorf("Drain = %+v, %v after %v; server got %+v", rep, err, phases, got)
	}
	srv.Close()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Close left the socket file: %v", err)
	}
	if _, err := Drain(t.Context(), path, Request{}, nil); !errors.Is(err, sockdrain.ErrInvalid) {
		t.Errorf("Drain with no server = %v, want ErrInvalid", err)
	}
}

func checkModes(t *testing.T, path string) {
	for p, want := range map[string]fs.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("mode of %s = %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
}

func TestListenRefusesOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(filepath.Join(dir, "x.sock"), nil, nil)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Listen in a world-writable directory = %v, want ErrPermission", err)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	srv, err := Listen(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := Listen(path, nil, nil); !errors.Is(err, ErrInUse) {
		t.Errorf("second Listen = %v, want ErrInUse", err)
	}
}
