package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	for _, m := range []message{{Report: &rep}, {Result: &Result{Report: rep, Kind: "timeout", Error: "drain timed out"}}} {
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

// TestKinds checks that every error of the table crosses the wire as
// itself: its kind, back in a RemoteError, matches it, and no other.
func TestKinds(t *testing.T) {
	for _, k := range kinds {
		wrapped := fmt.Errorf("drain: %w", k.err)
		kind := kindOf(wrapped)
		if kind != k.kind {
			t.Errorf("kindOf(%v) = %q, want %q", wrapped, kind, k.kind)
		}
		remote := &RemoteError{Kind: kind, Message: wrapped.Error()}
		for _, other := range kinds {
			if got, want := errors.Is(remote, other.err), other.kind == kind && errorOf(kind) == other.err; got != want {
				t.Errorf("RemoteError{%s} is %v: %v, want %v", kind, other.err, got, want)
			}
		}
	}
	if errors.Is(&RemoteError{Kind: "timeout"}, sockdrain.ErrTimeout) != true {
		t.Error("RemoteError{timeout} is not sockdrain.ErrTimeout")
	}
	if k := kindOf(errors.New("boom")); k != kindInternal {
		t.Errorf("kindOf(an unknown error) = %q, want %q", k, kindInternal)
	}
	if k := kindOf(nil); k != "" {
		t.Errorf("kindOf(nil) = %q, want empty", k)
	}
	for _, k := range []string{kindInternal, "from_a_newer_server"} {
		for _, row := range kinds {
			if errors.Is(&RemoteError{Kind: k}, row.err) {
				t.Errorf("RemoteError{%s} is %v", k, row.err)
			}
		}
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
	srv, err := Listen(path, h)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(t.Context())
	checkModes(t, path)
	var phases []sockdrain.Phase
	rep, err := Drain(t.Context(), path, Request{Port: "80", Timeout: time.Second}, func(r sockdrain.Report) { phases = append(phases, r.Phase) })
	if os.Geteuid() != 0 {
		if !errors.As(err, new(*RemoteError)) || !errors.Is(err, fs.ErrPermission) || len(phases) > 0 {
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
	_, err := Listen(filepath.Join(dir, "x.sock"), nil)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Listen in a world-writable directory = %v, want ErrPermission", err)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	srv, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := Listen(path, nil); !errors.Is(err, ErrInUse) {
		t.Errorf("second Listen = %v, want ErrInUse", err)
	}
}
