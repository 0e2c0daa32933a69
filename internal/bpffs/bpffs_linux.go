// Package bpffs keeps the pins of armed gates in the BPF filesystem, one
// directory per gate under /sys/fs/bpf/sockdrain, named by the gate's
// listener key, so a later process can find and disarm them. It also
// loads the BPF gates' objects (Load), marking what the kernel lacks.
//
// The pins live in the bpffs of the host's mount namespace, whatever
// mount namespace this process runs in: under `ip netns exec`, which
// gives its command a private mount namespace with a fresh /sys, it is
// reached through /proc/1/root. A bpffs mounted in a private namespace
// would die with the process, and every gate pinned in it.
package bpffs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MountPoint is where bpffs is mounted, as systemd and iproute2 do.
const MountPoint = "/sys/fs/bpf"

// rootName is the directory under the mount point that holds one
// directory per gate. Only root may enter it.
const rootName = "sockdrain"

// Root is the directory that holds one directory per gate, as this
// process reaches it: under MountPoint, or under /proc/PID/root when this
// process runs in a mount namespace other than the host's.
func Root() (string, error) {
	h, err := host()
	if err != nil {
		return "", err
	}
	return filepath.Join(h.dir, rootName), nil
}

// Path is the pin directory of the gate named key; it may not exist. A
// key names one backend's gate on one listener, and holds no dots: bpffs
// refuses names with dots. If the host's bpffs cannot be found, Path is
// under MountPoint, and Create, Exists, Remove and List say why.
func Path(key string) string {
	root, err := Root()
	if err != nil {
		root = filepath.Join(MountPoint, rootName)
	}
	return filepath.Join(root, key)
}

// Pin makes the pin directory of the gate named key afresh (it first
// removes what an arm that was killed may have left there) and calls pin
// with it. unpin removes the directory and all pinned in it; when pin
// fails, Pin has done so already.
func Pin(key string, pin func(dir string) error) (unpin func() error, err error) {
	if err := Remove(key); err != nil {
		return nil, err
	}
	dir, err := Create(key)
	if err != nil {
		return nil, err
	}
	unpin = func() error { return Remove(key) }
	if err := pin(dir); err != nil {
		return nil, errors.Join(err, unpin())
	}
	return unpin, nil
}

// Create makes the pin directory of the gate named key, mode 0700,
// mounting bpffs first if needed. It fails if the directory exists.
func Create(key string) (string, error) {
	mnt, err := Mount()
	if err != nil {
		return "", err
	}
	root := filepath.Join(mnt, rootName)
	if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create pin root: %w", err)
	}
	dir := filepath.Join(root, key)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("create pin dir: %w", err)
	}
	return dir, nil
}

// Exists reports whether the gate named key has a pin directory.
func Exists(key string) (bool, error) {
	root, err := Root()
	if err != nil {
		return false, err
	}
	_, err = os.Stat(filepath.Join(root, key))
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
	root, err := Root()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(root, key)); err != nil {
		return fmt.Errorf("remove pin dir: %w", err)
	}
	return nil
}

// List returns the keys of all gates that have a pin directory.
func List() ([]string, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
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
