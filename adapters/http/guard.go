package http

import (
	"bytes"
	"net"
)

// fasthttp v1.51 accepts request heads that a gateway must refuse, and it
// has no option to refuse them: of several Content-Length headers the last
// wins; Transfer-Encoding silently beats Content-Length (the two disagreeing
// is how requests are smuggled past a proxy); and a last header line
// without a colon makes it wait for more bytes until the read timeout
// instead of answering. So every connection is read through headGuard,
// which holds back each request head until it is complete, checks it, and
// follows the body's framing (Content-Length or chunked) to find where the
// next head starts. A head it refuses never reaches fasthttp whole: the
// guard hands over one byte of it and then a *headError, which fasthttp
// passes to Server.ErrorHandler (parseError) as the cause of a 400 that
// closes the connection.
//
// The guard is stricter than fasthttp, never looser: whatever it lets
// through, fasthttp frames the same way, so the two cannot disagree about
// where a request ends.

// maxHead bounds a request head held back by the guard. fasthttp's own
// read buffer (4 KiB, Fiber's default) answers 431 to a smaller head
// already; this only stops a head that never ends from growing the guard.
const maxHead = 16 << 10

// headError is why the guard refused a request. Its text is fixed: it
// never carries bytes of the request.
type headError struct {
	reason   string
	tooLarge bool
}

func (e *headError) Error() string { return "refused request head: " + e.reason }

var (
	errDupLength    = &headError{reason: "more than one Content-Length header"}
	errBadLength    = &headError{reason: "Content-Length is not a decimal number of bytes"}
	errLengthAndTE  = &headError{reason: "both Transfer-Encoding and Content-Length"}
	errBadTE        = &headError{reason: "Transfer-Encoding other than a single chunked"}
	errNoColon      = &headError{reason: "a header line without a colon"}
	errFolded       = &headError{reason: "a folded header line (obs-fold)"}
	errBadName      = &headError{reason: "a header name with white space"}
	errHeadTooLarge = &headError{reason: "request head too large", tooLarge: true}
	errBadChunk     = &headError{reason: "malformed chunked body"}
	errTrailer      = &headError{reason: "trailer fields after a chunked body"}
)

// headGuard wraps a listener so each connection is read through a guardConn.
type headGuard struct{ net.Listener }

func (l headGuard) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c}, nil
}

type guardState int

const (
	inHead      guardState = iota // before or inside a request head
	inBody                        // Content-Length bytes left in remain
	inChunkSize                   // a chunk-size line
	inChunkData                   // chunk bytes left in remain
	inChunkCRLF                   // the CRLF after a chunk's data
	inTrailer                     // after the last chunk: only an empty line
)

// guardConn is not safe for concurrent Reads; fasthttp reads a connection
// from one goroutine.
type guardConn struct {
	net.Conn
	buf    []byte // read from Conn and not yet handed to the caller
	ok     int    // buf[:ok] is checked and may be handed over
	state  guardState
	remain int64
	held   int   // after ok, checked but held back: the last chunk, until its trailer section is known empty
	err    error // handed to the caller once buf[:ok] is drained
	tmp    [4096]byte
}

func (c *guardConn) Read(p []byte) (int, error) {
	for {
		if c.ok > 0 {
			n := copy(p, c.buf[:c.ok])
			c.buf = c.buf[n:]
			c.ok -= n
			if len(c.buf) == 0 {
				c.buf = nil
			}
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.state == inBody && len(c.buf) == 0 {
			// A body is passed through without copying.
			if int64(len(p)) > c.remain {
				p = p[:c.remain]
			}
			n, err := c.Conn.Read(p)
			c.remain -= int64(n)
			if c.remain == 0 {
				c.state = inHead
			}
			return n, err
		}
		n, err := c.Conn.Read(c.tmp[:])
		c.buf = append(c.buf, c.tmp[:n]...)
		c.scan()
		if err != nil && c.err == nil {
			// The peer is gone or timed out: whatever is left cannot form
			// a complete request, so hand it over and let fasthttp see
			// the error itself (a timeout must stay a timeout).
			c.ok = len(c.buf)
			c.err = err
		}
	}
}

// scan advances c.ok over every complete unit of buf it can check.
func (c *guardConn) scan() {
	for c.err == nil && c.ok < len(c.buf) {
		rest := c.buf[c.ok:]
		switch c.state {
		case inHead:
			n, err := c.head(rest)
			if err != nil {
				// Hand over the head up to its first byte that is not an
				// empty line, so fasthttp has started a request (and
				// answers it) rather than seeing a bare close.
				lead := 0
				for lead < len(rest) && (rest[lead] == '\r' || rest[lead] == '\n') {
					lead++
				}
				c.ok += min(lead+1, len(rest))
				c.err = err
				return
			}
			if n == 0 {
				return
			}
			c.ok += n
		case inBody, inChunkData:
			n := int64(len(rest))
			if n > c.remain {
				n = c.remain
			}
			c.ok += int(n)
			c.remain -= n
			if c.remain == 0 {
				if c.state == inBody {
					c.state = inHead
				} else {
					c.state = inChunkCRLF
				}
			}
		case inChunkCRLF:
			if len(rest) < 2 {
				return
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				c.err = errBadChunk
				return
			}
			c.ok += 2
			c.state = inChunkSize
		case inChunkSize:
			line, n := c.framingLine(rest, errBadChunk)
			if n == 0 {
				return
			}
			size, ok := chunkSize(line)
			if !ok {
				c.err = errBadChunk
				return
			}
			if size == 0 {
				// The body ends here if no trailer field follows: until
				// that is known, fasthttp does not get the last chunk
				// (it would serve the request whatever came after).
				c.held, c.state = n, inTrailer
				continue
			}
			c.ok += n
			c.remain, c.state = size, inChunkData
		case inTrailer:
			line, n := c.framingLine(rest[c.held:], errTrailer)
			if n == 0 {
				return
			}
			if len(line) != 0 {
				c.err = errTrailer
				return
			}
			c.ok += c.held + n
			c.held, c.state = 0, inHead
		}
	}
}

// framingLine is nextLine for the lines of chunked framing, which are
// short: one that runs on past 1 KiB is refused with tooLong.
func (c *guardConn) framingLine(b []byte, tooLong error) ([]byte, int) {
	line, n := nextLine(b)
	if n == 0 && len(b) > 1024 {
		c.err = tooLong
	}
	return line, n
}

// nextLine returns the first line of b without its LF or CRLF, and the
// bytes it takes with its end; n is 0 while the line is incomplete.
func nextLine(b []byte) (line []byte, n int) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0
	}
	return bytes.TrimSuffix(b[:i], []byte{'\r'}), i + 1
}

// chunkSize reads a chunk-size line: hex digits, then an optional
// extension after ';' (which fasthttp skips, as the guard does).
func chunkSize(line []byte) (int64, bool) {
	digits := line
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		digits = line[:i]
	}
	// fasthttp allows 15 hex digits; the body limit refuses anything
	// near that long before it is read.
	if len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	var n int64
	for _, ch := range digits {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'f':
			d = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// head checks the request head at the start of b and sets the framing of
// its body. It returns 0 while the head is incomplete.
func (c *guardConn) head(b []byte) (int, error) {
	n := 0
	// headLine returns the next line of the head; ok is false while it is
	// incomplete, or with err when the head is over maxHead.
	headLine := func() (line []byte, ok bool, err error) {
		line, m := nextLine(b[n:])
		switch {
		case m == 0 && len(b) > maxHead, n+m > maxHead:
			return nil, false, errHeadTooLarge
		case m == 0:
			return nil, false, nil
		}
		n += m
		return line, true, nil
	}
	// fasthttp skips empty lines before a request line; so does the guard.
	for {
		line, ok, err := headLine()
		if !ok {
			return 0, err
		}
		if len(line) > 0 {
			break // the request line; fasthttp checks it
		}
	}
	var lengths, encodings int
	var length int64
	chunked := false
	for {
		line, ok, err := headLine()
		if !ok {
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return 0, errFolded
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, errNoColon
		}
		name := line[:colon]
		if bytes.ContainsAny(name, " \t") || colon == 0 {
			return 0, errBadName
		}
		// Values are trimmed of spaces only, as fasthttp does: a tab left
		// in a value makes it refused here rather than read differently.
		value := bytes.Trim(line[colon+1:], " ")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			lengths++
			if lengths > 1 {
				return 0, errDupLength
			}
			v, ok := decimal(value)
			if !ok {
				return 0, errBadLength
			}
			length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			encodings++
			if encodings > 1 || !bytes.EqualFold(value, []byte("chunked")) {
				return 0, errBadTE
			}
			chunked = true
		}
	}
	switch {
	case chunked && lengths > 0:
		return 0, errLengthAndTE
	case chunked:
		c.state = inChunkSize
	case length > 0:
		c.state, c.remain = inBody, length
	}
	return n, nil
}

// decimal parses a Content-Length: 1 to 18 digits, nothing else.
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	return n, true
}
