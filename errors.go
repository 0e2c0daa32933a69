package sockdrain

import "errors"

// Errors callers can test for with errors.Is.
var (
	// ErrInvalid wraps every error caused by bad input. Nothing on the
	// system has changed when it is returned.
	ErrInvalid = errors.New("invalid input")
	// ErrNoListener reports a target with no listening TCP socket. It
	// wraps ErrInvalid.
	ErrNoListener = &noListenerError{}
	// ErrNotSupported reports a feature this kernel or OS lacks.
	ErrNotSupported = errors.New("not supported")
	// ErrBusy reports a port that another drain holds: one is running, or
	// a gate of a different backend is still armed on it. Nothing on the
	// system has changed when it is returned.
	ErrBusy = errors.New("port busy")
	// ErrListenerClosed reports a listener that went away during a drain
	// while the process that held it kept running: the server closed it,
	// and the kernel reset whatever was queued.
	ErrListenerClosed = errors.New("listener closed during the drain")
	// ErrServerExited reports a server whose every process holding the
	// listening socket exited during a drain, as a crash does. The kernel
	// reset whatever was queued.
	ErrServerExited = errors.New("server exited during the drain")
	// ErrTimeout reports a drain that did not finish within its timeout.
	ErrTimeout = errors.New("drain timed out")
	// ErrStop reports a hand-over to the server's stop (Options.Stop or
	// Options.StopSignal) that failed or could not start.
	ErrStop = errors.New("stop the server")
)

type noListenerError struct{}

func (*noListenerError) Error() string        { return "no listening TCP socket" }
func (*noListenerError) Is(target error) bool { return target == ErrInvalid }

// inputError is an error caused by bad input.
type inputError struct{ error }

func (e inputError) Unwrap() error      { return e.error }
func (inputError) Is(target error) bool { return target == ErrInvalid }
