package pcblist

import (
	"errors"
	"fmt"
	"time"
)

// MaxReads bounds how many times Consistent reads a list that keeps
// changing while it is read.
const MaxReads = 16

// pause waits between reads; a fake in tests.
var pause = time.Sleep

// Consistent returns the records of the first list read returns that did
// not change while it was read (see ErrTorn), trying up to MaxReads times,
// at once and then after pauses of 1, 2, ... ms. One torn read in about a
// hundred was seen on FreeBSD 15.1 while a gate refused loopback clients:
// its records were a subset, without the listener. After MaxReads torn
// reads in a row it returns an error that wraps ErrTorn, never an empty
// list, so a caller does not mistake churn for a closed listener, nor for
// a drained queue. Any other error ends the reads at once.
func Consistent(read func() ([]byte, error)) ([]Record, error) {
	var err error
	for i := range MaxReads {
		if i > 1 {
			pause(time.Duration(i-1) * time.Millisecond)
		}
		var b []byte
		if b, err = read(); err != nil {
			return nil, err
		}
		rs, perr := Parse(b)
		if !errors.Is(perr, ErrTorn) {
			return rs, perr
		}
		err = perr
	}
	return nil, fmt.Errorf("read TCP socket list %d times, each changed while it was read: %w", MaxReads, err)
}
