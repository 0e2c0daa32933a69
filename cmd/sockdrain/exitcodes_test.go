package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// TestREADMEExitCodesMatchTheTable fails when the README's exit-code table
// and exitCodes disagree, in either direction.
func TestREADMEExitCodesMatchTheTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no README.md beside the test binary (as in make vmtest's VMs)")
	}
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "### Exit codes\n")
	if !ok {
		t.Fatal("README has no \"### Exit codes\" section")
	}
	var rows [][2]string
	for _, line := range strings.Split(after, "\n") {
		if strings.HasPrefix(line, "#") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if !strings.HasPrefix(line, "|") || len(cells) != 2 || strings.HasPrefix(cells[0], "---") || strings.TrimSpace(cells[0]) == "code" {
			continue
		}
		rows = append(rows, [2]string{strings.TrimSpace(cells[0]), strings.TrimSpace(cells[1])})
	}
	if len(rows) != len(exitCodes) {
		t.Errorf("README lists %d exit codes, the code %d", len(rows), len(exitCodes))
	}
	for i := range min(len(rows), len(exitCodes)) {
		want := [2]string{exitCodes[i].codesText(), exitCodes[i].meaning}
		if rows[i] != want {
			t.Errorf("README row %d:\n  %q\nthe code's:\n  %q", i, rows[i], want)
		}
	}
}

func TestHelpListsEveryExitCode(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != exitOK {
		t.Fatalf("--help exited %d", code)
	}
	for _, r := range exitCodes {
		if !strings.Contains(out, "\n   "+r.codesText()+" ") {
			t.Errorf("--help does not list exit code %s:\n%s", r.codesText(), out)
		}
	}
	for _, line := range strings.Split(exitCodesHelp(), "\n") {
		if len(line) > 80 {
			t.Errorf("help line longer than 80 columns: %q", line)
		}
	}
}
