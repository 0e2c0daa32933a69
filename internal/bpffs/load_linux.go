package bpffs

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Load loads the programs and maps of the spec load returns, as bpf2go's
// loadX does, into a new T. what names the program in errors.
func Load[T any](what string, load func() (*ebpf.CollectionSpec, error)) (*T, error) {
	spec, err := load()
	if err != nil {
		return nil, fmt.Errorf("load %s spec: %w", what, err)
	}
	objs := new(T)
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		return nil, fmt.Errorf("load %s program: %w", what, NotSupported(err))
	}
	return objs, nil
}

// NotSupported marks cilium/ebpf's ErrNotSupported as gate.ErrNotSupported.
func NotSupported(err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%w: %w", gate.ErrNotSupported, err)
	}
	return err
}
