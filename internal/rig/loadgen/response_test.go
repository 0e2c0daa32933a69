package loadgen

import (
	"errors"
	"fmt"
	"testing"
)

func body(n int) []byte {
	b := make([]byte, n)
	FillBody(b)
	return b
}

func okResponse(n int) []byte {
	return append(fmt.Appendf(nil, "HTTP/1.0 200 OK\r\ncontent-length: %d\r\nConnection: close\r\n\r\n", n), body(n)...)
}

// feedSplit feeds p in pieces of size step and returns the first error.
func feedSplit(r *response, p []byte, step int) error {
	for len(p) > 0 {
		k := min(step, len(p))
		if err := r.feed(p[:k]); err != nil {
			return err
		}
		p = p[k:]
	}
	return nil
}

func TestResponseComplete(t *testing.T) {
	full := okResponse(1000)
	for _, step := range []int{1, 2, 3, 7, 64, len(full)} {
		r := response{checkBody: true}
		if err := feedSplit(&r, full, step); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if !r.complete() || r.n != int64(len(full)) || r.length != 1000 {
			t.Errorf("step %d: complete %v n %d length %d", step, r.complete(), r.n, r.length)
		}
	}
}

func TestResponseEmptyBody(t *testing.T) {
	r := response{}
	if err := r.feed(okResponse(0)); err != nil || !r.complete() {
		t.Errorf("empty body: complete %v, err %v", r.complete(), err)
	}
}

func TestResponseIncomplete(t *testing.T) {
	full := okResponse(100)
	for _, cut := range []int{1, 20, len(full) - 100, len(full) - 1} {
		r := response{checkBody: true}
		if err := r.feed(full[:cut]); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if r.complete() {
			t.Errorf("cut at %d of %d: complete", cut, len(full))
		}
	}
}

func TestResponseErrors(t *testing.T) {
	bad := body(10)
	bad[4] = 'z'
	for _, tc := range []struct {
		name string
		resp []byte
		want error
	}{
		{"status 503", []byte("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"), ErrBadResponse},
		{"not http", []byte("SSH-2.0-OpenSSH\r\n\r\n"), ErrBadResponse},
		{"no length", []byte("HTTP/1.0 200 OK\r\n\r\n"), ErrBadResponse},
		{"bad length", []byte("HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\n"), ErrBadResponse},
		{"extra bytes", append(okResponse(10), 'a'), ErrExtraBytes},
		{"wrong body", append([]byte("HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n"), bad...), ErrBodyMismatch},
		{"huge head", append([]byte("HTTP/1.0 200 OK\r\nX: "), make([]byte, maxHead)...), ErrBadResponse},
	} {
		r := response{checkBody: true}
		if err := feedSplit(&r, tc.resp, 5); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestResponseResetKeepsBuffer(t *testing.T) {
	r := response{checkBody: true}
	if err := r.feed(okResponse(5)); err != nil {
		t.Fatal(err)
	}
	r.reset()
	if r.n != 0 || r.inBody || !r.checkBody || len(r.head) != 0 {
		t.Errorf("after reset: %+v", r)
	}
}

func TestCloses(t *testing.T) {
	for head, want := range map[string]bool{
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n":                           true,
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n":                      false,
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n":                           false,
		"HTTP/1.1 200 OK\r\nconnection: Close\r\nContent-Length: 1\r\n\r\n":      true,
		"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n": false,
	} {
		if got := closes([]byte(head)); got != want {
			t.Errorf("closes(%q) = %v, want %v", head, got, want)
		}
	}
}
