package redis_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/redis"
)

// startRedis runs a redis-server of this test's own (it is killed below)
// with the persistence the gateway needs, on a free loopback port.
func startRedis(t *testing.T, dir string, port int, extra ...string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CORRIDOR_TEST_REQUIRE_BACKENDS") != "" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not found; `make test` installs it")
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no")
	cmd.Args = append(cmd.Args, extra...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// With appendonly yes and appendfsync always, a redis-server killed with
// SIGKILL loses no inbox entry: after the restart the unacked message
// pulled before the kill comes back, the others arrive, and the acked one
// stays gone.
func TestInboxesSurviveRedisKill(t *testing.T) {
	ctx := context.Background()
	dir, port := t.TempDir(), freePort(t)
	srv := startRedis(t, dir, port)
	url := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	open := func() *redis.Store {
		s := redis.New(url)
		s.VisibilityTimeout = 500 * time.Millisecond
		s.PollChunk = 100 * time.Millisecond
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := s.Open(ctx)
			if err == nil {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("redis did not come up: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // the server is starting: poll until it answers
		}
	}
	s := open()
	var ids []string
	for i := range 5 {
		m := exchange.Message{DocumentID: exchange.DocumentID("kill", "", []byte{byte(i)}), Type: "one-bill", Sender: "a", ReceivedAt: time.Now()}
		ids = append(ids, m.DocumentID)
		if err := s.Enqueue(ctx, m, "party-b"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Pull(ctx, "party-b", 2, 0) // ids[0] and ids[1] in flight
	if err != nil || len(got) != 2 {
		t.Fatalf("pull = %v, %v", got, err)
	}
	if n, err := s.Ack(ctx, "party-b", ids[:1]); err != nil || n != 1 {
		t.Fatalf("ack = %d, %v", n, err)
	}
	s.Close()

	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	startRedis(t, dir, port)
	s = open()
	defer s.Close()

	var after []string
	for len(after) < 4 {
		msgs, err := s.Pull(ctx, "party-b", 10, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			after = append(after, m.DocumentID)
		}
		if _, err := s.Ack(ctx, "party-b", after); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(after)
	want := slices.Clone(ids[1:])
	slices.Sort(want)
	if !slices.Equal(after, want) {
		t.Fatalf("after the kill the inbox gave %v; want the 4 unacked %v", after, want)
	}
}
