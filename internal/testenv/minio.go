package testenv

import (
	"bytes"
	"fmt"
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
// temporary folder, and returns once it serves objects; it is killed when
// the test ends.
func StartMinIO(t testing.TB) *OwnMinIO {
	t.Helper()
	bin := minioBin(t)
	ports := freePorts(t, 2)
	port, console := ports[0], ports[1]
	m := &OwnMinIO{S3: S3{Endpoint: "127.0.0.1:" + port, AccessKey: "corridor-own", SecretKey: "corridor-own-" + Prefix(), Bucket: "own"}}
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", m.Endpoint,
		"--console-address", "127.0.0.1:"+console, t.TempDir())
	m.cmd.Env = minioEnv(m.S3)
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill() // SIGKILL ends a stopped process too
		_ = m.cmd.Wait()
	})
	waitServing(t, m.Endpoint)
	return m
}

// minioBin finds the MinIO binary that scripts/test.sh builds into
// $HOME/.cache/corridor/bin (or $CORRIDOR_CACHE/bin).
func minioBin(t testing.TB) string {
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
	return bins[len(bins)-1]
}

func minioEnv(s S3) []string {
	return append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
}

// waitServing polls a MinIO node until it serves objects, with write
// quorum: /minio/health/cluster answers 503 until then, while live and
// ready answer 200 as soon as HTTP is up ("Server not initialized yet").
func waitServing(t testing.TB, endpoint string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	Eventually(t, time.Minute, "MinIO "+endpoint+" serves objects", func() bool {
		resp, err := client.Get("http://" + endpoint + "/minio/health/cluster")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// MinIOCluster is a distributed MinIO of one test's own: 4 nodes, each its
// own process on its own loopback port with 2 drives (folders) of its
// own, erasure-coded across the 8 drives (4 data, 4 parity: any one node
// may go).
type MinIOCluster struct {
	S3    // Endpoint is node 0
	Nodes []string
	bin   string
	args  [][]string
	procs []*exec.Cmd
	logs  string
}

// StartMinIOCluster starts the 4 nodes and returns once each serves
// objects with write quorum; they are killed when the test ends.
func StartMinIOCluster(t testing.TB) *MinIOCluster {
	t.Helper()
	const nodes, drives = 4, 2
	c := &MinIOCluster{bin: minioBin(t), procs: make([]*exec.Cmd, nodes)}
	ports := freePorts(t, 2*nodes)
	dir := t.TempDir()
	var endpoints []string
	for i := range nodes {
		c.Nodes = append(c.Nodes, "127.0.0.1:"+ports[i])
		for d := range drives {
			endpoints = append(endpoints, fmt.Sprintf("http://127.0.0.1:%s%s/node%d/drive%d", ports[i], dir, i, d))
		}
	}
	for i := range nodes {
		c.args = append(c.args, append([]string{"server", "--quiet", "--address", c.Nodes[i],
			"--console-address", "127.0.0.1:" + ports[nodes+i]}, endpoints...))
	}
	c.S3 = S3{Endpoint: c.Nodes[0], AccessKey: "corridor-dist", SecretKey: "corridor-dist-" + Prefix(), Bucket: "dist"}
	c.logs = dir
	t.Cleanup(func() {
		for i := range nodes {
			c.Kill(t, i)
		}
	})
	for i := range nodes { // a node answers only once enough of the others do
		c.spawn(t, i)
	}
	for i := range nodes {
		waitServing(t, c.Nodes[i])
	}
	return c
}

func (c *MinIOCluster) spawn(t testing.TB, i int) {
	t.Helper()
	cmd := exec.Command(c.bin, c.args[i]...)
	// In a container MinIO waits for ever for host names that resolve to
	// loopback, unless told which host is its own; and it will not use
	// drives on the root file system unless in CI.
	cmd.Env = append(minioEnv(c.S3), "_MINIO_SERVER_LOCAL="+c.Nodes[i], "MINIO_CI_CD=1")
	log, err := os.OpenFile(filepath.Join(c.logs, fmt.Sprintf("node%d.log", i)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.procs[i] = cmd
}

// Start starts node i again, after Kill, and waits until it serves
// objects again.
func (c *MinIOCluster) Start(t testing.TB, i int) {
	t.Helper()
	c.spawn(t, i)
	waitServing(t, c.Nodes[i])
}

// Kill ends node i with SIGKILL; killing a node that is down does nothing.
func (c *MinIOCluster) Kill(t testing.TB, i int) {
	t.Helper()
	if c.procs[i] == nil {
		return
	}
	_ = c.procs[i].Process.Kill()
	_ = c.procs[i].Wait()
	c.procs[i] = nil
}

// Pause stops the server with SIGSTOP: connections stay open and nothing
// answers, as with a hung disk or a frozen VM. Resume undoes it.
func (m *OwnMinIO) Pause(t testing.TB) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The signal is delivered asynchronously: a request sent before the
	// server stops would still be answered (the test would be flaky).
	Eventually(t, 10*time.Second, "MinIO stopped", func() bool { return processState(m.cmd.Process.Pid) == 'T' })
}

// processState is the state letter of a process in /proc (R, S, T, ...),
// or 0 if it cannot be read.
func processState(pid int) byte {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
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
