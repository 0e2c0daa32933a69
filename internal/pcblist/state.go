package pcblist

import "github.com/sockdrain/sockdrain/sockdrain/observe"

// TCPState is a TCP state, numbered as in FreeBSD's sys/netinet/tcp_fsm.h.
type TCPState int32

// TCP states, with FreeBSD's numbers (TCPS_*).
const (
	Closed      TCPState = 0
	Listen      TCPState = 1
	SynSent     TCPState = 2
	SynReceived TCPState = 3
	Established TCPState = 4
	CloseWait   TCPState = 5
	FinWait1    TCPState = 6
	Closing     TCPState = 7
	LastAck     TCPState = 8
	FinWait2    TCPState = 9
	TimeWait    TCPState = 10
)

var observed = [...]observe.State{
	Closed:      observe.Close,
	Listen:      observe.Listen,
	SynSent:     observe.SynSent,
	SynReceived: observe.SynRecv,
	Established: observe.Established,
	CloseWait:   observe.CloseWait,
	FinWait1:    observe.FinWait1,
	Closing:     observe.Closing,
	LastAck:     observe.LastAck,
	FinWait2:    observe.FinWait2,
	TimeWait:    observe.TimeWait,
}

// Observe maps s onto the Linux numbering observe uses.
// A state FreeBSD does not define maps to zero, which observe names UNKNOWN.
func (s TCPState) Observe() observe.State {
	if s < 0 || int(s) >= len(observed) {
		return 0
	}
	return observed[s]
}

func (s TCPState) String() string { return s.Observe().String() }
