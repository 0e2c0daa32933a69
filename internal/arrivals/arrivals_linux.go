package arrivals

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/link"

	"github.com/sockdrain/sockdrain/internal/bpffs"
)

// Counter counts the arrivals on one port of one namespace from when
// Watch returned until Close.
type Counter struct {
	objs arrivalsObjects
	link link.Link
}

// Watch starts counting the connections that arrive on port in the
// network namespace whose inode is netnsInode.
func Watch(netnsInode uint64, port uint16) (_ *Counter, err error) {
	spec, err := loadArrivals()
	if err != nil {
		return nil, fmt.Errorf("load arrivals spec: %w", err)
	}
	if err := spec.Variables["port"].Set(port); err != nil {
		return nil, fmt.Errorf("set arrivals port: %w", err)
	}
	if err := spec.Variables["netns_ino"].Set(uint32(netnsInode)); err != nil {
		return nil, fmt.Errorf("set arrivals namespace: %w", err)
	}
	c := &Counter{}
	if err := spec.LoadAndAssign(&c.objs, bpffs.Options()); err != nil {
		return nil, fmt.Errorf("load arrivals program: %w", bpffs.Unloadable(err))
	}
	if c.link, err = link.AttachTracing(link.TracingOptions{Program: c.objs.SdCountArrival}); err != nil {
		c.objs.Close()
		return nil, fmt.Errorf("attach arrivals program: %w", bpffs.NotSupported(err))
	}
	return c, nil
}

// Count is the number of connections that arrived since Watch.
func (c *Counter) Count() (uint64, error) {
	var n uint64
	if err := c.objs.SdArrivals.Lookup(uint32(0), &n); err != nil {
		return 0, fmt.Errorf("read arrivals: %w", err)
	}
	return n, nil
}

// Close stops counting.
func (c *Counter) Close() error {
	return errors.Join(c.link.Close(), c.objs.Close())
}
