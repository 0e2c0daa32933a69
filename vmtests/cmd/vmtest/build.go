//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sockdrain/sockdrain/vmtests"
)

// build compiles the guest init and one static test binary per package
// into dir.
func build(dir string, testTimeout time.Duration, busybox string) (vmtests.Guest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return vmtests.Guest{}, fmt.Errorf("make build dir: %w", err)
	}
	g := vmtests.Guest{Init: filepath.Join(dir, "init"), Tests: map[string]string{}, Testdata: map[string]string{},
		Tools: map[string]string{"sh": busybox, "sleep": busybox, "touch": busybox}, Timeout: testTimeout}
	if err := goTool("build", "-o", g.Init, "./vmtests/cmd/vminit"); err != nil {
		return g, err
	}
	for name, pkg := range packages {
		bin := filepath.Join(dir, name+".test")
		if err := goTool("test", "-c", "-o", bin, pkg); err != nil {
			return g, err
		}
		g.Tests[name] = bin
		if td := filepath.Join(pkg, "testdata"); isDir(td) {
			g.Testdata[name] = td
		}
	}
	return g, nil
}

// goTool runs the go command with cgo off, so binaries are static.
func goTool(args ...string) error {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s %s: %w", args[0], args[len(args)-1], err)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
