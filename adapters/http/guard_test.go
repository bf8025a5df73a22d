package http

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// splitConn returns its data at most step bytes per Read, then io.EOF.
type splitConn struct {
	net.Conn
	data []byte
	step int
}

func (c *splitConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// throughGuard reads data through a guardConn that gets it step bytes at a
// time and hands it on in reads of size out.
func throughGuard(data []byte, step, out int) ([]byte, error) {
	g := &guardConn{Conn: &splitConn{data: data, step: step}}
	var got []byte
	buf := make([]byte, out)
	for {
		n, err := g.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// The guard only ever hands over a prefix of what it read, unchanged, and
// how the bytes are split into reads changes neither what it hands over
// nor what it refuses: it keeps no state that depends on the split.
func FuzzGuardIsSplitIndependent(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint8(1), uint8(7))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nA\r\n\r\n"), uint8(3), uint8(2))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), uint8(2), uint8(64))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na"), uint8(5), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, step, out uint8) {
		whole, werr := throughGuard(data, len(data)+1, 1<<16)
		got, err := throughGuard(data, int(step%64)+1, int(out%64)+1)
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("handed over bytes that were not read: %q from %q", got, data)
		}
		if !bytes.Equal(got, whole) || (werr == io.EOF) != (err == io.EOF) {
			t.Fatalf("split reads: %q, %v; one read: %q, %v", got, err, whole, werr)
		}
		var he *headError
		if errors.As(err, &he) && len(got) == len(data) {
			t.Fatalf("refused (%v) but handed over everything", err)
		}
	})
}

func TestGuardFraming(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     error // nil: everything passes, then io.EOF
	}{
		{"body bytes that look like a bad head", "POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\nNoColon\r\n\r\n\r\n", nil},
		{"a bad head after a body", "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\nNoColon\r\n\r\n", errNoColon},
		{"chunk data that looks like a bad head", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nNoColon\r\n\r\n0\r\n\r\n", nil},
		{"a trailer", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n", errTrailer},
		{"a tab before the length", "POST / HTTP/1.1\r\nContent-Length:\t5\r\n\r\nhello", errBadLength},
		{"LF line ends", "GET / HTTP/1.1\nHost: x\n\nGET / HTTP/1.1\nHost: x\n\n", nil},
	} {
		got, err := throughGuard([]byte(c.in), 1, 3)
		want := c.want
		if want == nil {
			want = io.EOF
			if string(got) != c.in {
				t.Errorf("%s: handed over %q", c.name, got)
			}
		}
		if err != want {
			t.Errorf("%s: %v, want %v", c.name, err, want)
		}
	}
}
