package testenv

import (
	"os/exec"
	"testing"
)

// servers are the processes of one test's own, by address, with their
// command lines so that one killed can be started again; all are killed
// when the test ends.
type servers struct {
	cmds  map[string]*exec.Cmd // nil once killed
	lines map[string][]string  // program and arguments
}

func newServers(t testing.TB) *servers {
	s := &servers{cmds: map[string]*exec.Cmd{}, lines: map[string][]string{}}
	t.Cleanup(func() {
		for addr := range s.cmds {
			s.stop(addr)
		}
	})
	return s
}

// start runs bin with args as the server at addr.
func (s *servers) start(t testing.TB, addr, bin string, args ...string) {
	t.Helper()
	s.lines[addr] = append([]string{bin}, args...)
	s.spawn(t, addr)
}

func (s *servers) spawn(t testing.TB, addr string) {
	t.Helper()
	line := s.lines[addr]
	cmd := exec.Command(line[0], line[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmds[addr] = cmd
}

// Kill ends a server with SIGKILL, as a crash would.
func (s *servers) Kill(t testing.TB, addr string) {
	t.Helper()
	if s.cmds[addr] == nil {
		t.Fatalf("no server running at %s", addr)
	}
	s.stop(addr)
}

func (s *servers) stop(addr string) {
	if cmd := s.cmds[addr]; cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		s.cmds[addr] = nil
	}
}

// up reports whether the server at addr runs (was not killed).
func (s *servers) up(addr string) bool { return s.cmds[addr] != nil }

// redisArgs are the arguments of a redis-server on port with the
// persistence the gateway needs, its data in a folder of the test's own.
func redisArgs(t testing.TB, port string) []string {
	return []string{"--bind", "127.0.0.1", "--port", port, "--dir", t.TempDir(), "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"}
}
