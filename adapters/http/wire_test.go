package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	httpapi "github.com/landsea/corridor/adapters/http"
)

// serveTCP serves e on a real loopback socket, since app.Test hands
// fasthttp a parsed request and skips the parser these tests are about.
func serveTCP(t *testing.T, e *env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.srv.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

type wireResponse struct {
	status int
	header http.Header
	body   string
	close  bool // Connection: close (net/http moves it out of the header)
}

// rawExchange writes raw bytes on one connection and reads n responses.
// The deadline only turns a hung server into a failure: the server's own
// read timeout is a minute, so an answer within it came at once.
func rawExchange(t *testing.T, addr, raw string, n int) []wireResponse {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []wireResponse
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d of %q: %v", len(out)+1, raw, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, wireResponse{resp.StatusCode, resp.Header, string(body), resp.Close})
	}
	return out
}

const secretHeaders = "Authorization: Bearer cor.leakcheckid.SECRET-VALUE\r\nCookie: session=SESSION-SECRET\r\n"

// checkRefusal asserts a fixed problem+json refusal that quotes nothing
// of the request.
func checkRefusal(t *testing.T, name string, r wireResponse, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (%s)", name, r.status, status, r.body)
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q", name, ct)
	}
	var p httpapi.Problem
	if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Errorf("%s: not a complete problem: %s", name, r.body)
	}
	for _, leak := range []string{"SECRET", "Bearer", "session", "leakcheckid", "Buffer", "contents"} {
		if strings.Contains(r.body, leak) {
			t.Errorf("%s: the refusal echoes %q: %s", name, leak, r.body)
		}
	}
	if !r.close {
		t.Errorf("%s: the connection is kept open after a refused head", name)
	}
}

func TestMalformedRequestsAreRefusedAtOnceWithoutEcho(t *testing.T) {
	e := newEnv(t, httpapi.Config{ReadTimeout: time.Minute}, nil, nil)
	addr := serveTCP(t, e)
	const post = "POST /v1/validate/one-bill HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + secretHeaders
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"negative Content-Length", post + "Content-Length: -1\r\n\r\n", 400},
		{"non-numeric Content-Length", post + "Content-Length: 5x\r\n\r\nhello", 400},
		{"two different Content-Lengths", post + "Content-Length: 5\r\nContent-Length: 500\r\n\r\nhello", 400},
		{"two equal Content-Lengths", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"Transfer-Encoding then Content-Length", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"Content-Length then Transfer-Encoding", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"unknown Transfer-Encoding", post + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"last header line without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + secretHeaders + "NoColonHere\r\n\r\n", 400},
		{"header line without a colon in the middle", "GET /healthz HTTP/1.1\r\nNoColonHere\r\n" + secretHeaders + "Host: x\r\n\r\n", 400},
		{"folded header line", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + secretHeaders + "X-A: a\r\n b\r\n\r\n", 400},
		{"space before the colon", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + secretHeaders + "Content-Length : 5\r\n\r\nhello", 400},
		{"broken chunk", post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400},
		{"trailer after a chunked body", post + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: smuggled\r\n\r\n", 400},
		{"head too large", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + secretHeaders + "X-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431},
	} {
		r := rawExchange(t, addr, c.raw, 1)
		checkRefusal(t, c.name, r[0], c.status)
	}
}

// Good requests pass the guard unchanged, pipelined on one connection
// with both kinds of body framing; a bad head after them is still answered
// (not dropped as a closing keep-alive connection).
func TestPipelinedRequestsPassTheGuard(t *testing.T) {
	e := newEnv(t, httpapi.Config{ReadTimeout: time.Minute}, nil, nil)
	addr := serveTCP(t, e)
	doc := string(example(t, "one-bill"))
	auth := "Authorization: Bearer " + e.keys["cq-mto"] + "\r\n"
	var chunked strings.Builder
	for i := 0; i < len(doc); i += 100 {
		part := doc[i:min(i+100, len(doc))]
		chunked.WriteString(strconv.FormatInt(int64(len(part)), 16) + ";ext=1\r\n" + part + "\r\n")
	}
	chunked.WriteString("0\r\n\r\n")
	raw := "POST /v1/validate/one-bill HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(doc)) + "\r\n\r\n" + doc +
		"\r\n" + // a stray empty line between requests, which fasthttp skips
		"POST /v1/validate/one-bill HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String() +
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /healthz HTTP/1.1\r\nHost: x\r\n" + secretHeaders + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"
	rs := rawExchange(t, addr, raw, 4)
	for i, want := range []int{200, 200, 200} {
		if rs[i].status != want {
			t.Errorf("request %d: %d %s", i+1, rs[i].status, rs[i].body)
		}
	}
	if !strings.Contains(rs[0].body, `"valid":true`) || !strings.Contains(rs[1].body, `"valid":true`) {
		t.Errorf("the documents did not arrive whole: %s | %s", rs[0].body, rs[1].body)
	}
	checkRefusal(t, "bad head after good ones", rs[3], 400)
}
