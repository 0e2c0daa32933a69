package sockdrain

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// source is an OS's way of listing the TCP sockets on one port.
type source interface {
	sockets(port uint16) ([]observe.Socket, error)
	pids(inodes []uint64) ([]int, error)
	Close() error
}

// activitySource is a source that can list a port's sockets without when
// each last sent and received data, more cheaply.
type activitySource interface {
	withoutActivity(port uint16) ([]observe.Socket, error)
}

// listenSource is a source that can list only the listening sockets on a
// port, more cheaply than all of them.
type listenSource interface {
	listening(port uint16) ([]observe.Socket, error)
}

// lookupSource is a source that can ask for known sockets again, each
// at a cost that does not grow with the sockets of the host, and list the
// listeners alone.
type lookupSource interface {
	listenSource
	lookup(known []observe.Socket, activity bool) ([]observe.Socket, error)
}

// arrivalSource is a source that can count the connections that arrive
// on a port from a moment on.
type arrivalSource interface {
	watchArrivals(port uint16) (counter, error)
}

// counter counts arrivals; see package arrivals.
type counter interface {
	Count() (uint64, error)
	Close() error
}

// maxLookups is the most sockets a narrow poll asks for one by one; with
// more, one dump costs less.
const maxLookups = 512

// destroyWatcher is a source that can report the sockets freed on a port,
// as the engine's notifier describes.
type destroyWatcher interface {
	watchDestroyed(port uint16) (<-chan struct{}, func(), error)
}

// Observer watches the listeners that serve a Target. It holds an open
// kernel handle, so one Observer can be polled cheaply; Close releases it.
type Observer struct {
	target Target
	src    source
	// idle is how long a connection must be quiet to count as idle.
	idle time.Duration
	// owners are the pids holding each listening socket, by the
	// socket's inodes: found once, and again only when the listeners
	// change or one of their processes is gone.
	owners map[string][]int
	// narrow is set (see narrowPolls) once a drain's gate refuses and the
	// backlog is empty; known are the sockets the last poll left pending.
	narrow bool
	known  []observe.Socket
	polled bool // known is set
	// arrivals, if set, counts the connections that reach the port, since
	// counting (once tried, set or not); walked is its count just before
	// the last full walk, if walkedOK.
	counting bool
	arrivals counter
	walked   uint64
	walkedOK bool
}

// NewObserver opens an Observer for t. It does not check that anything
// listens there; Listeners does.
func NewObserver(t Target) (*Observer, error) {
	src, err := openSource(t.NetNS)
	if err != nil {
		return nil, err
	}
	return &Observer{target: t, src: src, idle: DefaultIdle}, nil
}

// Close releases the Observer's kernel handle.
func (o *Observer) Close() error {
	if o.arrivals != nil {
		o.arrivals.Close()
	}
	return o.src.Close()
}

// Listeners returns the state of each listener serving the target, without
// their PIDs. It returns ErrNoListener when there is none.
func (o *Observer) Listeners() ([]Listener, error) { return o.listenersIn(o.src.sockets) }

// lookup returns the target's listeners with their accept queues, but not
// their connections: where the OS can, from a dump of listening sockets
// only, whose cost does not grow with the connections on the host.
func (o *Observer) lookup() ([]Listener, error) {
	dump := o.src.sockets
	if ls, ok := o.src.(listenSource); ok {
		dump = ls.listening
	}
	return o.listenersIn(dump)
}

// listenersIn folds the sockets dump returns into the target's listeners.
func (o *Observer) listenersIn(dump func(port uint16) ([]observe.Socket, error)) ([]Listener, error) {
	sockets, err := dump(o.target.Port)
	if err != nil {
		return nil, err
	}
	ls := observe.Serving(observe.Fold(sockets, o.idle), o.target.Addr)
	if len(ls) == 0 {
		return nil, fmt.Errorf("%w on %s", ErrNoListener, o.target)
	}
	return ls, nil
}

// narrowPolls makes poll look, where the OS can, only at the listeners
// and at the sockets it already knows. A drain calls it once its gate
// refuses and the backlog is empty: a connection can then arrive only
// through a listener's accept queue, or as a SYN-cookie handshake the
// reuseport gate lets finish. Where the kernel can count those arrivals
// (package arrivals), a narrow poll is exact as long as the count stays
// where it was at the last full walk; it walks again when the count moves.
// Without the count, it walks when a listener has connections to accept,
// and when nothing it knows is left, so that a drain ends only on a full
// walk.
func (o *Observer) narrowPolls() {
	o.narrow = true
	o.countArrivals()
}

// countArrivals starts counting the connections that arrive on the port,
// where the OS can. A drain starts it as soon as its gate refuses, so that
// its first poll, a full walk, is the count's starting point.
func (o *Observer) countArrivals() {
	if o.counting {
		return
	}
	o.counting = true
	if as, ok := o.src.(arrivalSource); ok {
		o.arrivals, _ = as.watchArrivals(o.target.Port) // without it, narrow polls end on a walk
	}
}

// poll observes the target once, for a drain: see watcher.
func (o *Observer) poll(follow []netip.AddrPort, activity bool) ([]Listener, []observe.Socket, error) {
	if ls, pending, ok, err := o.pollKnown(follow, activity); ok || err != nil {
		return ls, pending, err
	}
	if o.arrivals != nil {
		var err error
		o.walked, err = o.arrivals.Count()
		o.walkedOK = err == nil
	}
	ls, pending, err := o.pollAll(follow, activity)
	o.known, o.polled = pending, err == nil
	return ls, pending, err
}

// pollKnown is a narrow poll: the listeners, and the known sockets looked
// up by their addresses. ok is false when it cannot answer and poll must
// walk: see narrowPolls.
func (o *Observer) pollKnown(follow []netip.AddrPort, activity bool) (_ []Listener, _ []observe.Socket, ok bool, err error) {
	src, can := o.src.(lookupSource)
	if !o.narrow || !can || !o.polled || len(o.known) > maxLookups {
		return nil, nil, false, nil
	}
	exact, moved := o.noArrivals()
	if moved || (!exact && len(o.known) == 0) {
		return nil, nil, false, nil
	}
	sockets, err := src.listening(o.target.Port)
	if err != nil || slices.ContainsFunc(sockets, func(s observe.Socket) bool { return s.RecvQ > 0 }) {
		return nil, nil, false, err
	}
	found, err := src.lookup(o.known, activity)
	if err != nil || (!exact && len(found) == 0) {
		return nil, nil, false, err
	}
	ls, pending, err := o.fold(append(sockets, found...), follow)
	if err != nil || (!exact && len(pending) == 0) {
		return nil, nil, false, err
	}
	o.known = pending
	return ls, pending, true, nil
}

// noArrivals reports whether the arrivals count shows that no connection
// reached the port since the last full walk (exact), or that one may have
// (moved: one did, or counting began after that walk). Both are false
// when there is no count to go by.
func (o *Observer) noArrivals() (exact, moved bool) {
	if o.arrivals == nil || !o.walkedOK {
		return false, o.arrivals != nil // counting, but since no walk: walk now
	}
	n, err := o.arrivals.Count()
	if err != nil {
		return false, true
	}
	return n == o.walked, n != o.walked
}

// pollAll is a poll that walks every socket of the port.
func (o *Observer) pollAll(follow []netip.AddrPort, activity bool) ([]Listener, []observe.Socket, error) {
	dump := o.src.sockets
	if as, ok := o.src.(activitySource); ok && !activity {
		dump = as.withoutActivity
	}
	sockets, err := dump(o.target.Port)
	if err != nil {
		return nil, nil, err
	}
	return o.fold(sockets, follow)
}

// fold groups the sockets of a poll by the listener they arrived through,
// or by the followed addresses, and returns what the drain waits on.
func (o *Observer) fold(sockets []observe.Socket, follow []netip.AddrPort) ([]Listener, []observe.Socket, error) {
	var ls []Listener
	if follow != nil {
		ls = observe.Follow(sockets, follow, o.idle)
	} else if ls = observe.Serving(observe.Fold(sockets, o.idle), o.target.Addr); len(ls) == 0 {
		return nil, nil, fmt.Errorf("%w on %s", ErrNoListener, o.target)
	}
	return ls, observe.Pending(sockets, ls), nil
}

// destroyed reports the sockets freed on the target's port, where the OS
// can; it makes Observer an engine notifier.
func (o *Observer) destroyed() (<-chan struct{}, func(), error) {
	dw, ok := o.src.(destroyWatcher)
	if !ok {
		return nil, nil, errors.ErrUnsupported
	}
	return dw.watchDestroyed(o.target.Port)
}

// Status is Listeners with the PIDs of the processes that hold each
// listening socket. Finding those walks every process's descriptors, so an
// Observer remembers them while the listeners and their processes stay.
func (o *Observer) Status() ([]Listener, error) {
	ahead := o.ownersAhead()
	ls, err := o.Listeners()
	if ahead != nil {
		<-ahead
	}
	if err != nil {
		return nil, err
	}
	if !o.ownersKnown(ls) {
		if err := o.findOwners(ls); err != nil {
			return nil, err
		}
	}
	for i := range ls {
		ls[i].PIDs = o.owners[inodesKey(ls[i].Inodes)]
	}
	return ls, nil
}

// ownersAhead starts the search for owners that Status needs, beside
// the dump of Listeners: both walk what the host holds (its processes'
// descriptors; its established hash), and one need not wait for the
// other. It reads the listeners from a dump of listening sockets only,
// which does not walk the established hash. The returned channel closes
// when the search ends; it is nil when no search started. Status checks
// the owners found against the listeners it reports, and searches again
// for any that differ. Once owners are remembered (status --watch), it
// starts nothing: Status's own check finds any that changed.
func (o *Observer) ownersAhead() <-chan struct{} {
	if _, ok := o.src.(listenSource); !ok || o.owners != nil {
		return nil
	}
	ls, err := o.lookup()
	if err != nil || o.ownersKnown(ls) {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.findOwners(ls) // an error here is met again by Status's own search
	}()
	return done
}

// ownersKnown reports whether the owners of every listener in ls are
// remembered and still running.
func (o *Observer) ownersKnown(ls []Listener) bool {
	for _, l := range ls {
		pids, ok := o.owners[inodesKey(l.Inodes)]
		if !ok {
			return false
		}
		for _, pid := range pids {
			if !running(pid) {
				return false
			}
		}
	}
	return true
}

func (o *Observer) findOwners(ls []Listener) error {
	o.owners = map[string][]int{}
	for _, l := range ls {
		pids, err := o.src.pids(l.Inodes)
		if err != nil {
			return err
		}
		o.owners[inodesKey(l.Inodes)] = pids
	}
	return nil
}

func inodesKey(inodes []uint64) string { return fmt.Sprint(inodes) }

// running reports whether process pid exists.
func running(pid int) bool {
	return syscall.Kill(pid, 0) != syscall.ESRCH
}

// Status observes t once.
func Status(t Target) ([]Listener, error) {
	o, err := NewObserver(t)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return o.Status()
}
