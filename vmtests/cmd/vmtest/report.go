//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sockdrain/sockdrain/vmtests"
)

// failureTail is how many output lines of a failed package are shown.
const failureTail = 40

// kernelReport is what one VM produced.
type kernelReport struct {
	kernel  vmtests.Booted
	start   time.Time
	elapsed time.Duration
	results []vmtests.Result
	log     string
	err     error
	absent  []string // modules this kernel does not have
}

// print writes the kernel's verdict and every result, and returns whether
// the kernel passed: the VM finished, every test binary ran and exited 0,
// and no test failed.
func (r kernelReport) print(w io.Writer) bool {
	count := map[string]int{}
	ran := map[string]bool{}
	for _, res := range r.results {
		if res.Test == "" {
			ran[res.Package] = res.Status == vmtests.StatusPass
			if res.Status != vmtests.StatusPass {
				count[vmtests.StatusFail]++
			}
			continue
		}
		count[res.Status]++
	}
	missing := r.missing(ran)
	ok := r.err == nil && count[vmtests.StatusFail] == 0 && len(missing) == 0
	fmt.Fprintf(w, "== kernel %s (%s): %s, %d passed, %d skipped, %d failed, %s\n", r.kernel.Name, r.kernel.Release,
		verdict(ok), count[vmtests.StatusPass], count[vmtests.StatusSkip], count[vmtests.StatusFail], r.elapsed.Round(time.Second))
	if len(r.absent) > 0 {
		fmt.Fprintf(w, "   note: not a module of this kernel (absent, or part of another): %s\n", strings.Join(r.absent, ", "))
	}
	for _, res := range r.results {
		fmt.Fprintln(w, "   "+line(res))
	}
	for _, m := range missing {
		fmt.Fprintf(w, "   FAIL  %s: did not run to the end\n", m)
	}
	if r.err != nil {
		fmt.Fprintf(w, "   FAIL  %v\n", r.err)
	}
	r.showFailures(w)
	return ok
}

// missing names the packages without a passing whole-binary result.
func (r kernelReport) missing(ran map[string]bool) []string {
	var m []string
	for name := range packages {
		if _, ok := ran[name]; !ok {
			m = append(m, name)
		}
	}
	return m
}

func line(res vmtests.Result) string {
	name := res.Package + "." + res.Test
	if res.Test == "" {
		name = res.Package + " (test binary)"
	}
	s := fmt.Sprintf("%-5s %s (%.2fs)", res.Status, name, res.Seconds)
	if res.Detail != "" {
		s += ": " + res.Detail
	}
	return s
}

// showFailures prints the last lines of output of each failed package.
func (r kernelReport) showFailures(w io.Writer) {
	for _, res := range r.results {
		if res.Test == "" && res.Status != vmtests.StatusPass {
			fmt.Fprintf(w, "   --- last output of %s on %s (whole log: %s)\n", res.Package, r.kernel.Name, r.log)
			for _, l := range tail(r.log, "["+res.Package+"] ", failureTail) {
				fmt.Fprintln(w, "   | "+l)
			}
		}
	}
}

// tail returns the last n lines of the file at path that start with prefix.
func tail(path, prefix string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(strings.TrimRight(sc.Text(), "\r"), prefix); ok {
			lines = append(lines, l)
		}
	}
	return lines[max(0, len(lines)-n):]
}
