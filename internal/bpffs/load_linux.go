package bpffs

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// KernelTypes holds the running kernel's BTF, which CO-RE relocations and
// the iterators' attach targets need: decoded once per process and shared
// by every load, not once per load.
var KernelTypes = btf.NewCache()

// Options are the options of every load: the shared KernelTypes.
func Options() *ebpf.CollectionOptions { return &ebpf.CollectionOptions{Cache: KernelTypes} }

// Load loads the programs and maps of the spec load returns, as bpf2go's
// loadX does, into a new T. what names the program in errors.
func Load[T any](what string, load func() (*ebpf.CollectionSpec, error)) (*T, error) {
	spec, err := load()
	if err != nil {
		return nil, fmt.Errorf("load %s spec: %w", what, err)
	}
	objs := new(T)
	if err := spec.LoadAndAssign(objs, Options()); err != nil {
		return nil, fmt.Errorf("load %s program: %w", what, Unloadable(err))
	}
	return objs, nil
}

// Unloadable marks an error of loading a program or map as
// gate.ErrNotSupported: whether the kernel lacks a feature, its verifier
// refuses the program or the process may not load it, the gate cannot
// run here, and a drain tries the next (or exits 4).
func Unloadable(err error) error {
	if errors.Is(err, gate.ErrNotSupported) {
		return err
	}
	return fmt.Errorf("%w: %w", gate.ErrNotSupported, err)
}

// NotSupported marks cilium/ebpf's ErrNotSupported as gate.ErrNotSupported.
func NotSupported(err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%w: %w", gate.ErrNotSupported, err)
	}
	return err
}
