package sockdrain

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/sockdrain/sockdrain/internal/pcblist"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// tornSource fails as the FreeBSD source does when every read of
// net.inet.tcp.pcblist tore.
type tornSource struct{}

func (tornSource) sockets(port uint16) ([]observe.Socket, error) {
	return nil, fmt.Errorf("list TCP sockets on port %d: %w", port, pcblist.ErrTorn)
}
func (tornSource) pids([]uint64) ([]int, error) { return []int{}, nil }
func (tornSource) Close() error                 { return nil }

// TestTornListIsNotNoListener: lists that keep changing while they are read
// say so, and are never taken for a closed listener (exit 2 from status,
// exit 5 from a drain) nor for bad input.
func TestTornListIsNotNoListener(t *testing.T) {
	o := &Observer{target: Target{Port: 8080}, src: tornSource{}}
	for name, f := range map[string]func() error{
		"Listeners": func() error { _, err := o.Listeners(); return err },
		"Status":    func() error { _, err := o.Status(); return err },
		"poll":      func() error { _, _, err := o.poll(nil, true); return err },
		"follow": func() error {
			_, _, err := o.poll([]netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:8080")}, true)
			return err
		},
	} {
		err := f()
		if !errors.Is(err, pcblist.ErrTorn) || errors.Is(err, ErrNoListener) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrListenerClosed) {
			t.Errorf("%s = %v; want ErrTorn, not ErrNoListener, ErrInvalid or ErrListenerClosed", name, err)
		}
	}
}
