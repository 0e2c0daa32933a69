package bpffs

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Load loads the programs and maps of spec, as bpf2go's loadX returns it,
// into objs. what names the program in errors.
func Load(what string, spec *ebpf.CollectionSpec, err error, objs any) error {
	if err != nil {
		return fmt.Errorf("load %s spec: %w", what, err)
	}
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		return fmt.Errorf("load %s program: %w", what, NotSupported(err))
	}
	return nil
}

// NotSupported marks cilium/ebpf's ErrNotSupported as gate.ErrNotSupported.
func NotSupported(err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%w: %w", gate.ErrNotSupported, err)
	}
	return err
}
