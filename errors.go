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
)

type noListenerError struct{}

func (*noListenerError) Error() string        { return "no listening TCP socket" }
func (*noListenerError) Is(target error) bool { return target == ErrInvalid }

// inputError is an error caused by bad input.
type inputError struct{ error }

func (e inputError) Unwrap() error      { return e.error }
func (inputError) Is(target error) bool { return target == ErrInvalid }
