package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Errors that make an attempt's outcome Other.
var (
	// ErrBadResponse reports a response that is not HTTP/1.x 200 with a
	// Content-Length, or whose head is too long.
	ErrBadResponse = errors.New("bad response")
	// ErrBodyMismatch reports a body that differs from BodyByte's pattern.
	ErrBodyMismatch = errors.New("body differs from pattern")
	// ErrExtraBytes reports bytes after the Content-Length body.
	ErrExtraBytes = errors.New("bytes after end of body")
)

// maxHead bounds a response's status line and headers.
const maxHead = 4096

// BodyByte is byte i of the body the demo server sends and Config.CheckBody
// expects: a repeating, offset-dependent pattern, so a truncated, shifted or
// mixed-up body does not pass.
func BodyByte(i int64) byte { return 'a' + byte(i%26) }

// FillBody fills p with the body pattern from offset 0.
func FillBody(p []byte) {
	for i := range p {
		p[i] = BodyByte(int64(i))
	}
}

// request is the GET an attempt sends: HTTP/1.0, so the server closes the
// connection after one response, or HTTP/1.1 for a keep-alive client.
func request(host, path string, keepAlive bool) []byte {
	version := "1.0"
	if keepAlive {
		version = "1.1"
	}
	return fmt.Appendf(nil, "GET %s HTTP/%s\r\nHost: %s\r\nUser-Agent: sockdrain-loadgen\r\n\r\n", path, version, host)
}

// response reads one HTTP/1.x response fed to it in pieces.
type response struct {
	head      []byte // status line and headers, while inBody is false
	inBody    bool
	length    int64 // Content-Length
	body      int64 // body bytes seen
	n         int64 // all response bytes seen
	close     bool  // the server will close the connection after it
	checkBody bool
}

func (r *response) reset() {
	*r = response{head: r.head[:0], checkBody: r.checkBody}
}

// complete reports whether the whole body has arrived.
func (r *response) complete() bool { return r.inBody && r.body == r.length }

// feed takes the next bytes read from the connection.
func (r *response) feed(p []byte) error {
	r.n += int64(len(p))
	if !r.inBody {
		var err error
		if p, err = r.feedHead(p); err != nil || !r.inBody {
			return err
		}
	}
	return r.feedBody(p)
}

// feedHead gathers the head until its blank line, parses it, and returns
// the bytes after it.
func (r *response) feedHead(p []byte) ([]byte, error) {
	start := max(len(r.head)-3, 0)
	r.head = append(r.head, p...)
	end := bytes.Index(r.head[start:], []byte("\r\n\r\n"))
	if end < 0 {
		if len(r.head) > maxHead {
			return nil, fmt.Errorf("read response head: over %d bytes: %w", maxHead, ErrBadResponse)
		}
		return nil, nil
	}
	end += start + 4
	rest := p[len(p)-(len(r.head)-end):]
	length, err := parseHead(r.head[:end])
	if err != nil {
		return nil, err
	}
	r.inBody, r.length, r.close = true, length, closes(r.head[:end])
	return rest, nil
}

func (r *response) feedBody(p []byte) error {
	if int64(len(p)) > r.length-r.body {
		return fmt.Errorf("read body of %d bytes: %w", r.length, ErrExtraBytes)
	}
	if r.checkBody {
		for i, b := range p {
			if b != BodyByte(r.body+int64(i)) {
				return fmt.Errorf("read body byte %d: %w", r.body+int64(i), ErrBodyMismatch)
			}
		}
	}
	r.body += int64(len(p))
	return nil
}

// parseHead checks the status line for 200 and returns the Content-Length.
func parseHead(head []byte) (int64, error) {
	lines := bytes.Split(head[:len(head)-4], []byte("\r\n"))
	status := lines[0]
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || string(status[8:12]) != " 200" {
		return 0, fmt.Errorf("read status line %q: %w", status, ErrBadResponse)
	}
	for _, line := range lines[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(name, []byte("Content-Length")) {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("read Content-Length %q: %w", value, ErrBadResponse)
		}
		return n, nil
	}
	return 0, fmt.Errorf("read response head: no Content-Length: %w", ErrBadResponse)
}

// closes reports whether a response head says the server closes the
// connection after it: HTTP/1.0 unless it says keep-alive, or any version
// with Connection: close.
func closes(head []byte) bool {
	close := bytes.HasPrefix(head, []byte("HTTP/1.0"))
	for _, line := range bytes.Split(head, []byte("\r\n"))[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(name, []byte("Connection")) {
			continue
		}
		v := bytes.TrimSpace(value)
		close = bytes.EqualFold(v, []byte("close")) || close && !bytes.EqualFold(v, []byte("keep-alive"))
	}
	return close
}
