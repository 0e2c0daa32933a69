package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, err)}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		bytes int64
		want  Outcome
	}{
		{"nil", nil, 100, Complete},
		{"refused", opErr("connect", syscall.ECONNREFUSED), 0, Refused},
		{"reset on read, nothing read", opErr("read", syscall.ECONNRESET), 0, ResetBeforeResponse},
		{"reset on read, some read", opErr("read", syscall.ECONNRESET), 10, ResetMidResponse},
		{"epipe on write", opErr("write", syscall.EPIPE), 0, ResetBeforeResponse},
		{"eof, nothing read", io.EOF, 0, ResetBeforeResponse},
		{"eof, some read", io.EOF, 10, Partial},
		{"wrapped eof, some read", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), 3, Partial},
		{"read deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, 0, Timeout},
		{"read deadline mid-response", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, 7, Timeout},
		{"dial deadline", &net.OpError{Op: "dial", Err: context.DeadlineExceeded}, 0, Timeout},
		{"syn retransmits gave up", opErr("connect", syscall.ETIMEDOUT), 0, Timeout},
		{"bad status", fmt.Errorf("read status: %w", ErrBadResponse), 30, Other},
		{"unreachable", opErr("connect", syscall.ENETUNREACH), 0, Other},
		{"unknown", errors.New("connection refused"), 0, Other},
	} {
		if got := Classify(tc.err, tc.bytes); got != tc.want {
			t.Errorf("%s: Classify(%v, %d) = %v, want %v", tc.name, tc.err, tc.bytes, got, tc.want)
		}
	}
}

func TestClassifyRealDialTimeout(t *testing.T) {
	// An already expired deadline fails the dial before any packet is sent;
	// the error is the net package's own timeout value.
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	_, err := plainDialer().DialContext(ctx, "tcp", "127.0.0.1:9")
	if err == nil {
		t.Fatal("dial with an expired deadline succeeded")
	}
	if got := Classify(err, 0); got != Timeout {
		t.Errorf("Classify(%v) = %v, want timeout", err, got)
	}
}

func TestCounts(t *testing.T) {
	n := [numOutcomes]int64{1, 2, 3, 4, 5, 6, 7}
	c := countsOf(&n)
	if c.Total() != 28 || c.Bad() != 25 {
		t.Errorf("Total %d Bad %d, want 28 25", c.Total(), c.Bad())
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"complete":1,"refused":2,"reset_before_response":3,"reset_mid_response":4,"timeout":5,"partial":6,"other":7}`
	if string(b) != want {
		t.Errorf("json %s, want %s", b, want)
	}
}

func TestOutcomeText(t *testing.T) {
	for o := range numOutcomes {
		b, err := o.MarshalText()
		if err != nil || string(b) != outcomeNames[o] || outcomeNames[o] == "" {
			t.Errorf("outcome %d: %q, %v", o, b, err)
		}
	}
	if _, err := numOutcomes.MarshalText(); err == nil {
		t.Error("unknown outcome marshaled")
	}
}
