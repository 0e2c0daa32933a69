//go:build linux

package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/sockdrain/sockdrain/vmtests"
)

const verbose = `=== RUN   TestA
--- PASS: TestA (0.50s)
=== RUN   TestB
=== RUN   TestB/sub
    --- FAIL: TestB/sub (0.10s)
--- FAIL: TestB (0.20s)
=== RUN   TestC
    kernel_linux.go:24: sklookup gate needs Linux 5.17.0 (bpf_loop), kernel is 5.10.0: gate not supported
--- SKIP: TestC (0.00s)
FAIL
`

func TestReportOneResultPerTopLevelTest(t *testing.T) {
	var out bytes.Buffer
	report(&out, "5.10.0-1", "pkg", strings.NewReader(verbose))
	text := out.String()
	var got []vmtests.Result
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if r, ok, err := vmtests.ParseResult(sc.Text()); err != nil {
			t.Fatal(err)
		} else if ok {
			got = append(got, r)
		}
	}
	want := []string{"TestA PASS", "TestB FAIL", "TestC SKIP"}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d:\n%s", len(got), len(want), text)
	}
	for i, r := range got {
		if r.Test+" "+r.Status != want[i] || r.Kernel != "5.10.0-1" || r.Package != "pkg" {
			t.Errorf("result %d = %+v, want %s", i, r, want[i])
		}
	}
	if !strings.Contains(got[2].Detail, "kernel is 5.10.0") {
		t.Errorf("skip detail %q does not carry the reason", got[2].Detail)
	}
	if !strings.Contains(text, "[pkg]     --- FAIL: TestB/sub") {
		t.Errorf("output is not echoed with the package:\n%s", text)
	}
}
