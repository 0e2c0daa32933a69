//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sockdrain/sockdrain/vmtests"
)

// testLine matches the outcome line of a top-level test in -test.v output.
var testLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

// killGrace is how long a binary may run past its own -test.timeout,
// which makes it panic with its goroutines, before it is killed.
const killGrace = 20 * time.Second

// notInVMs are the tests the VMs leave to `make test` on the host: the
// demo's own test measures client losses under 64 clients' load, which a
// TCG-emulated CPU serves too slowly to tell a lost client from a starved
// one. Every kernel feature it uses is tested here by other tests.
const notInVMs = "^TestDemoDrainedStopsLoseNoClient$"

// runTests runs one test binary in its directory and reports each
// top-level test, then the binary as a whole.
func runTests(release, bin string, timeout time.Duration) {
	pkg := strings.TrimSuffix(filepath.Base(bin), ".test")
	ctx, cancel := context.WithTimeout(context.Background(), timeout+killGrace)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.v", "-test.count=1", "-test.timeout="+timeout.String(), "-test.skip="+notInVMs)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = []string{"PATH=/bin", "HOME=/tmp", "TMPDIR=/tmp"}
	out, err := cmd.StdoutPipe()
	if err == nil {
		cmd.Stderr = cmd.Stdout
		err = cmd.Start()
	}
	start := time.Now()
	if err == nil {
		report(os.Stdout, release, pkg, out)
		err = cmd.Wait()
	}
	whole := vmtests.Result{Kernel: release, Package: pkg, Status: vmtests.StatusPass, Seconds: time.Since(start).Seconds()}
	if err != nil {
		whole.Status, whole.Detail = vmtests.StatusFail, fmt.Sprintf("run %s: %v", bin, err)
	}
	fmt.Println(whole.Line())
}

// report echoes the binary's output to the console, each line marked
// with the package, and writes a result line for each top-level test. A
// skip's result carries its reason: the last line the test logged, which
// -test.v prints before the "--- SKIP" line.
func report(w io.Writer, release, pkg string, out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var logged string
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(w, "[%s] %s\n", pkg, line)
		m := testLine.FindStringSubmatch(line)
		if m == nil {
			if !strings.HasPrefix(line, "=== ") {
				logged = strings.TrimSpace(line)
			}
			continue
		}
		secs, _ := strconv.ParseFloat(m[3], 64)
		r := vmtests.Result{Kernel: release, Package: pkg, Test: m[2], Status: m[1], Seconds: secs}
		if r.Status == vmtests.StatusSkip {
			r.Detail = logged
		}
		fmt.Fprintln(w, r.Line())
		logged = ""
	}
}
