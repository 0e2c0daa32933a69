//go:build linux

// Command vminit is PID 1 of a vmtests guest. It mounts what the tests
// need, loads the kernel modules the host resolved, brings loopback up,
// runs each test binary as its child with a timeout, writes one result
// line per test to the console, and powers the VM off.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/vmtests"
)

func main() {
	release := kernelRelease()
	if err := boot(release); err != nil {
		fmt.Println(vmtests.Result{Kernel: release, Package: "boot", Status: vmtests.StatusFail, Detail: err.Error()}.Line())
	}
	fmt.Println(vmtests.Result{Kernel: release, Status: vmtests.StatusDone}.Line())
	os.Stdout.Sync()
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {} // PID 1 must not exit: that panics the kernel.
}

// boot prepares the system and runs every test binary.
func boot(release string) error {
	if err := mountAll(); err != nil {
		return err
	}
	cfg, err := readConfig()
	if err != nil {
		return err
	}
	if err := loadModules(cfg.Modules); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	for _, bin := range cfg.Tests {
		runTests(release, bin, cfg.Timeout)
	}
	return nil
}

func readConfig() (vmtests.Config, error) {
	var cfg vmtests.Config
	data, err := os.ReadFile(vmtests.ConfigPath)
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		return cfg, fmt.Errorf("read %s: %w", vmtests.ConfigPath, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	return cfg, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
