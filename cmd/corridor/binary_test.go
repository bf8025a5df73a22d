package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinarySIGTERM builds the real binary, runs `corridor serve --demo`,
// and sends SIGTERM while a long poll is in flight: the poll completes
// and the process exits 0.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "corridor")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--demo", "--demo-dir", "../../deploy/demo",
		"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--visibility-timeout", "5s")
	cmd.Env = append(os.Environ(), "CORRIDOR_MAX_WAIT=10s")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The banner's first line says where it listens.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("banner: %v", err)
	}
	m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("banner %q", line)
	}
	base := m[1]
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(new(strings.Builder)) }()

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
