package testenv

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// OwnMinIO is a MinIO server of one test's own, for tests that stop it
// (SIGSTOP) and must not freeze the harness's shared one.
type OwnMinIO struct {
	S3
	cmd *exec.Cmd
}

// StartMinIO runs the MinIO binary that scripts/test.sh builds into
// $HOME/.cache/corridor/bin on a free loopback port, with its data in a
// temporary folder, and returns once it answers; it is killed when the
// test ends.
func StartMinIO(t testing.TB) *OwnMinIO {
	t.Helper()
	cache := os.Getenv("CORRIDOR_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "corridor")
	}
	bins, _ := filepath.Glob(filepath.Join(cache, "bin", "minio-*", "minio"))
	if len(bins) == 0 {
		if os.Getenv("CORRIDOR_TEST_REQUIRE_BACKENDS") != "" {
			t.Fatalf("no MinIO binary under %s/bin: scripts/test.sh builds it", cache)
		}
		t.Skip("no MinIO binary; scripts/test.sh builds it")
	}
	ports := freePorts(t, 2)
	port, console := ports[0], ports[1]
	m := &OwnMinIO{S3: S3{Endpoint: "127.0.0.1:" + port, AccessKey: "corridor-own", SecretKey: "corridor-own-" + Prefix(), Bucket: "own"}}
	m.cmd = exec.Command(bins[len(bins)-1], "server", "--quiet", "--address", m.Endpoint,
		"--console-address", "127.0.0.1:"+console, t.TempDir())
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill() // SIGKILL ends a stopped process too
		_ = m.cmd.Wait()
	})
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the server is starting: poll until it answers
	}
}

// Pause stops the server with SIGSTOP: connections stay open and nothing
// answers, as with a hung disk or a frozen VM. Resume undoes it.
func (m *OwnMinIO) Pause(t testing.TB) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume lets a paused server go on.
func (m *OwnMinIO) Resume(t testing.TB) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// freePorts holds each port open until all are chosen, so they differ.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return out
}
