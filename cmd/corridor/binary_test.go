package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/s3"
)

// TestBinarySIGTERM builds the real binary, runs `corridor serve --demo`,
// and sends SIGTERM while a long poll is in flight: the poll completes
// and the process exits 0.
func TestBinarySIGTERM(t *testing.T) {
	bin := buildBinary(t)
	cmd, base := startBinary(t, bin, t.TempDir())
	polled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/v1/inbox?wait=3", nil)
		req.Header.Set("Authorization", "Bearer "+key("corridor-ops"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			polled <- -1
			return
		}
		resp.Body.Close()
		polled <- resp.StatusCode
	}()
	// Wait until the server holds the poll's connection (a poll shows in
	// the metrics only when it ends), read from the process's sockets.
	waitFor(t, func() bool { return openConns(t, cmd.Process.Pid) >= 1 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := <-polled; st != 200 {
		t.Fatalf("long poll in flight at SIGTERM = %d, want 200", st)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

var builtBinary string

// buildBinary builds the real corridor binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if builtBinary == "" {
		dir, err := os.MkdirTemp("", "corridor-bin-")
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "corridor")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			t.Fatalf("build: %v", err)
		}
		builtBinary = bin
	}
	return builtBinary
}

// startBinary runs `corridor serve --demo` on data and returns the process
// and its base URL, read from the banner.
func startBinary(t *testing.T, bin, data string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	return startBinaryEnv(t, bin, data, nil, args...)
}

// startBinaryEnv is startBinary with more environment variables.
func startBinaryEnv(t *testing.T, bin, data string, env []string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--demo", "--demo-dir", "../../deploy/demo",
		"--listen", "127.0.0.1:0", "--data", data, "--visibility-timeout", "5s"}, args...)...)
	cmd.Env = append(append(os.Environ(), "CORRIDOR_MAX_WAIT=10s"), env...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("banner: %v", err)
	}
	m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("banner %q", line)
	}
	go func() { _, _ = r.WriteTo(io.Discard) }()
	return cmd, m[1]
}

// openConns counts the established TCP connections a process holds, from /proc.
func openConns(t *testing.T, pid int) int {
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(target, "socket:[") {
			sockets[strings.Trim(target[len("socket:"):], "[]")] = true
		}
	}
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, _ := os.ReadFile(file)
		for _, l := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) > 9 && f[3] == "01" && sockets[f[9]] { // 01: ESTABLISHED
				n++
			}
		}
	}
	return n
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary != "" {
		os.RemoveAll(filepath.Dir(builtBinary))
	}
	os.Exit(code)
}

// TestKillLosesNothingAcknowledged: the gateway is killed (SIGKILL) while
// clients submit; after a restart on the same data folder every document
// that got a receipt is there byte for byte, the recipient gets each once,
// and a retry of what was in flight completes it.
func TestKillLosesNothingAcknowledged(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	cmd, base := startBinary(t, bin, data)

	type sub struct {
		body []byte
		rcpt *exchange.Receipt
	}
	const clients, each = 4, 60
	subs := make([][]sub, clients)
	var acked atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				body := fmt.Appendf(nil, `{"eventID":"kill-%d-%03d","eventType":"EQUIPMENT","eventClassifierCode":"ACT","eventCode":"GTIN",
"eventDateTime":"2026-11-05T16:10:00+08:00","eventLocation":{"UNLocationCode":"CNCKG"},"publisher":"cq-rail",
"billReference":"CQNL2026000187","containerNumber":"CSQU3054383"}`, c, i)
				subs[c] = append(subs[c], sub{body: body})
				r, err := postEvent(base, body)
				if err != nil {
					return // the gateway is gone
				}
				subs[c][i].rcpt = r
				acked.Add(1)
			}
		})
	}
	waitFor(t, func() bool { return acked.Load() >= 40 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	_ = cmd.Wait()

	_, base = startBinary(t, bin, data)
	var receipts []*exchange.Receipt
	for _, cs := range subs {
		for _, s := range cs {
			if s.rcpt != nil {
				receipts = append(receipts, s.rcpt)
				continue
			}
			// Never acknowledged: the client retries, and it completes.
			r, err := postEvent(base, s.body)
			if err != nil {
				t.Fatalf("retry after restart: %v", err)
			}
			receipts = append(receipts, r)
		}
	}
	t.Logf("%d acknowledged before the kill, %d retried after", acked.Load(), len(receipts)-int(acked.Load()))
	for _, r := range receipts {
		got := call(t, "GET", base+"/v1/documents/"+r.ID, key("sg-motors"), nil)
		sum := sha256.Sum256(got.body)
		if got.status != 200 || hex.EncodeToString(sum[:]) != r.SHA256 {
			t.Fatalf("document %s after restart: %d, sha %x; want %s", r.ID, got.status, sum, r.SHA256)
		}
	}
	// The consignee gets every document exactly once.
	seen := map[string]int{}
	for {
		in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100", key("sg-motors"), nil))
		if len(in.Messages) == 0 {
			break
		}
		for _, m := range in.Messages {
			seen[m.DocumentID]++
		}
		call(t, "POST", base+"/v1/inbox/ack", key("sg-motors"), mustJSON(map[string]any{"ids": msgIDs(in)}))
	}
	for _, r := range receipts {
		if seen[r.ID] != 1 {
			t.Fatalf("consignee got %s %d times; want once", r.ID, seen[r.ID])
		}
	}
}

func postEvent(base string, body []byte) (*exchange.Receipt, error) {
	req, _ := http.NewRequest("POST", base+"/v1/documents/tracking-event", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key("cq-rail"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var r exchange.Receipt
	return &r, json.NewDecoder(resp.Body).Decode(&r)
}

// TestFailpointAfterArchive: the gateway dies (SIGKILL, by the failpoint
// CORRIDOR_FAILPOINT=after-archive) right after a document's archive
// write, before it is indexed or queued, and the sender never hears back
// nor retries. Restarted on the same data, the gateway completes the
// delivery from its outbox: the consignee gets the document. On the
// embedded backend, and on Redis + MinIO.
func TestFailpointAfterArchive(t *testing.T) {
	t.Run("Embedded", func(t *testing.T) {
		data := t.TempDir()
		failpointAfterArchive(t, data, nil, func() (exchange.Archive, exchange.Index, exchange.Outbox, func()) {
			st := local.New(data)
			if err := st.Open(); err != nil {
				t.Fatal(err)
			}
			return st, st, st, func() { st.Close() }
		})
	})
	t.Run("RedisMinIO", func(t *testing.T) {
		st := sharedStorage(t)
		args := []string{"--redis-url", st.RedisURL, "--redis-prefix", st.RedisPrefix, "--s3-endpoint", st.S3Endpoint,
			"--s3-bucket", st.S3Bucket, "--s3-access-key", st.S3AccessKey, "--s3-secret-key", st.S3SecretKey}
		failpointAfterArchive(t, t.TempDir(), args, func() (exchange.Archive, exchange.Index, exchange.Outbox, func()) {
			r := redis.New(st.RedisURL)
			r.Prefix = st.RedisPrefix
			a := s3.New(st.S3Endpoint, st.S3Bucket, st.S3AccessKey, st.S3SecretKey)
			if err := r.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := a.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			return a, r, r, func() { r.Close(); a.Close() }
		})
	})
}

// failpointAfterArchive runs the binary with args on data; open opens
// its storage while it is down.
func failpointAfterArchive(t *testing.T, data string, args []string,
	open func() (exchange.Archive, exchange.Index, exchange.Outbox, func())) {
	bin := buildBinary(t)
	cmd, base := startBinaryEnv(t, bin, data, []string{"CORRIDOR_FAILPOINT=after-archive"}, args...)
	body := []byte(`{"eventID":"failpoint-1","eventType":"EQUIPMENT","eventClassifierCode":"ACT","eventCode":"GTIN",
"eventDateTime":"2026-11-05T16:10:00+08:00","eventLocation":{"UNLocationCode":"CNCKG"},"publisher":"cq-rail",
"billReference":"CQNL2026000187","containerNumber":"CSQU3054383"}`)
	if r, err := postEvent(base, body); err == nil {
		t.Fatalf("the submission was answered (%s) past the failpoint", r.ID)
	}
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the gateway ended with %v; want killed by SIGKILL at the failpoint", cmd.ProcessState)
	}
	id := exchange.NamedDocumentID("tracking-event:cq-rail:failpoint-1")

	// While it is down: archived, not indexed, pending in the outbox.
	func() {
		archive, index, outbox, closeAll := open()
		defer closeAll()
		ctx := context.Background()
		if _, err := archive.Record(ctx, id); err != nil {
			t.Fatalf("the document is not in the archive: %v", err)
		}
		if _, err := index.Doc(ctx, id); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("the document was indexed before the kill (%v): the failpoint is not between the two steps", err)
		}
		p, err := outbox.Pending(ctx, time.Now().Add(time.Hour), 10)
		if err != nil || len(p) != 1 || p[0].ID != id {
			t.Fatalf("outbox while the gateway is down: %+v, %v; want [%s]", p, err, id)
		}
	}()

	// Restarted without the failpoint; the sender does nothing.
	_, base = startBinary(t, bin, data, args...)
	found := false
	waitFor(t, func() bool {
		in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100&wait=1", key("sg-motors"), nil))
		for _, m := range in.Messages {
			found = found || m.DocumentID == id
		}
		if len(in.Messages) > 0 {
			call(t, "POST", base+"/v1/inbox/ack", key("sg-motors"), mustJSON(map[string]any{"ids": msgIDs(in)}))
		}
		return found
	})
	got := call(t, "GET", base+"/v1/documents/"+id, key("sg-motors"), nil)
	if got.status != 200 || !bytes.Equal(got.body, body) {
		t.Fatalf("the document after the restart: %d %s", got.status, got.body)
	}
}
