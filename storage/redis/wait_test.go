package redis_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// With WaitReplicas, a write no replica confirmed is unavailable (the
// sender retries; nothing was acknowledged), every kind of write; once a
// replica follows, the retry succeeds and adds nothing twice.
func TestWaitReplicas(t *testing.T) {
	ctx := context.Background()
	port := freePort(t)
	startRedis(t, t.TempDir(), port)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := redis.New("redis://" + addr + "/0")
	// A second, not less: on a loaded 2-core machine a live replica can take
	// over 100 ms to confirm, and this test must not fail for that.
	s.WaitReplicas, s.WaitTimeout = 1, time.Second
	s.PollChunk = 100 * time.Millisecond
	testenv.Eventually(t, 10*time.Second, "redis-server answers", func() bool { return s.Open(ctx) == nil })
	defer s.Close()

	m := exchange.Message{DocumentID: exchange.DocumentID("wait", "", []byte{1}), Type: "one-bill", Sender: "a", ReceivedAt: time.Now()}
	rec := exchange.Record{Receipt: exchange.Receipt{ID: m.DocumentID, Type: "one-bill", Sender: "a"}, Keys: []string{"bill:W1"}}
	writes := []struct {
		name  string
		write func() error
	}{ // Ack first: the master runs a write whose WAIT fails, and it would ack the message
		{"Ack", func() error { _, err := s.Ack(ctx, "party-b", []string{m.DocumentID}); return err }},
		{"Enqueue", func() error { return s.Enqueue(ctx, m, "party-b") }},
		{"Add", func() error { return s.Add(ctx, rec, []exchange.Entry{{List: "l", Pos: "0001" + m.DocumentID}}) }},
		{"Claim", func() error { _, _, err := s.Claim(ctx, "bill:W2", m.DocumentID, time.Now(), time.Now()); return err }},
		{"Mark", func() error { _, err := s.Mark(ctx, m.DocumentID, time.Now()); return err }},
	}
	for _, w := range writes {
		if err := w.write(); !errors.Is(err, exchange.ErrUnavailable) || !strings.Contains(err.Error(), "0 of 1 replicas") {
			t.Errorf("%s with no replica = %v; want ErrUnavailable", w.name, err)
		}
	}

	startRedis(t, t.TempDir(), freePort(t), "--replicaof", "127.0.0.1", strconv.Itoa(port))
	master := goredis.NewClient(&goredis.Options{Addr: addr})
	defer master.Close()
	testenv.Eventually(t, 30*time.Second, "the replica follows", func() bool {
		info, err := master.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "state=online")
	})
	for _, w := range writes[1:] { // the sender's retries
		if err := w.write(); err != nil {
			t.Fatalf("%s again with a replica = %v", w.name, err)
		}
	}
	if got, err := s.Pull(ctx, "party-b", 10, 0); err != nil || len(got) != 1 {
		t.Fatalf("pull = %v, %v; want the one message", got, err)
	}
	if rec, err := s.Doc(ctx, m.DocumentID); err != nil || rec.ID != m.DocumentID {
		t.Fatalf("Doc = %+v, %v", rec, err)
	}
	if n, err := s.Ack(ctx, "party-b", []string{m.DocumentID}); err != nil || n != 1 {
		t.Fatalf("Ack with a replica = %d, %v; want the one message, enqueued once", n, err)
	}
}

// On a Redis Cluster, WAIT goes to each master a write touches, on the
// connection that wrote: with one master's replica down, a write that
// touches that master is unavailable and one that does not succeeds; once
// the replica is back, the retry succeeds and adds nothing twice.
func TestWaitReplicasCluster(t *testing.T) {
	ctx := context.Background()
	rc := testenv.StartRedisCluster(t)
	s := redis.New("")
	s.Cluster = rc.Nodes
	s.WaitReplicas, s.WaitTimeout = 1, time.Second
	s = openOn(t, s, time.Minute)

	// Two parties whose inboxes are on different masters.
	a, b := "party-a", ""
	for i := 0; b == ""; i++ {
		if p := "party-" + strconv.Itoa(i); rc.MasterOf(t, "{"+p+"}") != rc.MasterOf(t, "{"+a+"}") {
			b = p
		}
	}
	replica := rc.ReplicasOf(t, rc.MasterOf(t, "{"+a+"}"))[0]
	rc.Kill(t, replica)

	m := exchange.Message{DocumentID: exchange.DocumentID("wait", "", []byte{2}), Type: "one-bill", Sender: "c", ReceivedAt: time.Now()}
	if err := s.Enqueue(ctx, m, a, b); !errors.Is(err, exchange.ErrUnavailable) || !strings.Contains(err.Error(), "0 of 1 replicas") {
		t.Fatalf("Enqueue to %s (its master's replica down) and %s = %v; want ErrUnavailable", a, b, err)
	}
	other := exchange.Message{DocumentID: exchange.DocumentID("wait", "", []byte{3}), Type: "one-bill", Sender: "c", ReceivedAt: time.Now()}
	if err := s.Enqueue(ctx, other, b); err != nil {
		t.Fatalf("Enqueue to %s alone, its master's replica up = %v", b, err)
	}

	rc.Start(t, replica)
	if err := s.Enqueue(ctx, m, a, b); err != nil { // the sender's retry
		t.Fatalf("Enqueue again with every replica up = %v", err)
	}
	for party, want := range map[string]int{a: 1, b: 2} {
		if got, err := s.Pull(ctx, party, 10, 0); err != nil || len(got) != want {
			t.Errorf("pull %s = %v, %v; want %d messages, each once", party, got, err, want)
		}
	}
}
