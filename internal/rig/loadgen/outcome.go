package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Outcome is what became of one attempt: exactly one per attempt.
type Outcome uint8

// The outcomes, from best to worst for a drain's promise.
const (
	// Complete: status 200 and the whole Content-Length body arrived.
	Complete Outcome = iota
	// Refused: connect failed with ECONNREFUSED (the peer sent a RST to
	// the SYN). This is the only failure a drain allows.
	Refused
	// ResetBeforeResponse: the connection was reset, or closed by the
	// peer, before any response byte arrived (ECONNRESET, EPIPE or EOF).
	ResetBeforeResponse
	// ResetMidResponse: ECONNRESET or EPIPE after part of the response.
	ResetMidResponse
	// Timeout: the attempt's deadline passed, in connect or in read.
	Timeout
	// Partial: a clean EOF after part of the response, before its end.
	Partial
	// Other: anything else, such as a bad status or a malformed response.
	Other

	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	Complete:            "complete",
	Refused:             "refused",
	ResetBeforeResponse: "reset_before_response",
	ResetMidResponse:    "reset_mid_response",
	Timeout:             "timeout",
	Partial:             "partial",
	Other:               "other",
}

func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// MarshalText names the outcome, as String does.
func (o Outcome) MarshalText() ([]byte, error) {
	if o >= numOutcomes {
		return nil, fmt.Errorf("marshal outcome %d: unknown", uint8(o))
	}
	return []byte(o.String()), nil
}

// Classify maps the error that ended an attempt, and the number of response
// bytes read before it, to an outcome. A nil error means the response was
// read and verified complete.
func Classify(err error, responseBytes int64) Outcome {
	switch {
	case err == nil:
		return Complete
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case isTimeout(err):
		return Timeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		if responseBytes == 0 {
			return ResetBeforeResponse
		}
		return ResetMidResponse
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if responseBytes == 0 {
			return ResetBeforeResponse
		}
		return Partial
	}
	return Other
}

// isTimeout reports a deadline: a read or write deadline (os), a dial
// deadline (the net package maps it to one that matches
// context.DeadlineExceeded), or the kernel giving up on SYN retransmits.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ETIMEDOUT)
}

// Counts holds how many attempts ended in each outcome.
type Counts struct {
	Complete            int64 `json:"complete"`
	Refused             int64 `json:"refused"`
	ResetBeforeResponse int64 `json:"reset_before_response"`
	ResetMidResponse    int64 `json:"reset_mid_response"`
	Timeout             int64 `json:"timeout"`
	Partial             int64 `json:"partial"`
	Other               int64 `json:"other"`
}

func countsOf(n *[numOutcomes]int64) Counts {
	return Counts{
		Complete:            n[Complete],
		Refused:             n[Refused],
		ResetBeforeResponse: n[ResetBeforeResponse],
		ResetMidResponse:    n[ResetMidResponse],
		Timeout:             n[Timeout],
		Partial:             n[Partial],
		Other:               n[Other],
	}
}

// Total is the number of attempts counted.
func (c Counts) Total() int64 { return c.Complete + c.Refused + c.Bad() }

// Bad is the number of attempts that broke a drain's promise: every
// outcome except Complete and Refused.
func (c Counts) Bad() int64 {
	return c.ResetBeforeResponse + c.ResetMidResponse + c.Timeout + c.Partial + c.Other
}
