// Package bpffs keeps the pins of armed gates in the BPF filesystem, one
// directory per gate under /sys/fs/bpf/sockdrain, named by the gate's
// listener key, so a later process can find and disarm them.
package bpffs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MountPoint is where bpffs is mounted, as systemd and iproute2 do.
const MountPoint = "/sys/fs/bpf"

// Root holds one directory per gate. Only root may enter it.
var Root = filepath.Join(MountPoint, "sockdrain")

// Mount mounts bpffs at MountPoint unless a bpffs is already there.
func Mount() error {
	var st unix.Statfs_t
	if err := unix.Statfs(MountPoint, &st); err != nil {
		return fmt.Errorf("stat %s: %w", MountPoint, os.NewSyscallError("statfs", err))
	}
	if st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", MountPoint, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", MountPoint, os.NewSyscallError("mount", err))
	}
	return nil
}

// Path is the pin directory of the gate named key; it may not exist. A
// key names one backend's gate on one listener, and holds no dots: bpffs
// refuses names with dots.
func Path(key string) string {
	return filepath.Join(Root, key)
}

// Create makes the pin directory of the gate named key, mode 0700,
// mounting bpffs first if needed. It fails if the directory exists.
func Create(key string) (string, error) {
	if err := Mount(); err != nil {
		return "", err
	}
	if err := os.Mkdir(Root, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create pin root: %w", err)
	}
	dir := Path(key)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("create pin dir: %w", err)
	}
	return dir, nil
}

// Exists reports whether the gate named key has a pin directory.
func Exists(key string) (bool, error) {
	_, err := os.Stat(Path(key))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat pin dir: %w", err)
	}
	return true, nil
}

// Remove unpins everything in the pin directory of the gate named key and
// removes it. A missing directory is not an error.
func Remove(key string) error {
	if err := os.RemoveAll(Path(key)); err != nil {
		return fmt.Errorf("remove pin dir: %w", err)
	}
	return nil
}

// List returns the keys of all gates that have a pin directory.
func List() ([]string, error) {
	entries, err := os.ReadDir(Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pin dirs: %w", err)
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			keys = append(keys, e.Name())
		}
	}
	return keys, nil
}
