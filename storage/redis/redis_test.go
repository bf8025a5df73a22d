package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/storagetest"
)

func open(t *testing.T, vis time.Duration) *redis.Store {
	t.Helper()
	return openOn(t, redis.New(testenv.RedisURL(t)), vis)
}

// openCluster opens a store on the test Redis Cluster.
func openCluster(t *testing.T, vis time.Duration) *redis.Store {
	t.Helper()
	s := redis.New("")
	s.Cluster = testenv.RedisCluster(t)
	return openOn(t, s, vis)
}

func openOn(t *testing.T, s *redis.Store, vis time.Duration) *redis.Store {
	t.Helper()
	s.Prefix = testenv.Prefix()
	s.VisibilityTimeout = vis
	s.PollChunk = 100 * time.Millisecond
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Run("Queue", func(t *testing.T) {
		storagetest.Queue(t, func(t *testing.T, vis time.Duration) exchange.Queue { return open(t, vis) })
	})
	t.Run("Index", func(t *testing.T) {
		storagetest.Index(t, func(t *testing.T) exchange.Index { return open(t, time.Minute) })
	})
	t.Run("Outbox", func(t *testing.T) {
		storagetest.Outbox(t, func(t *testing.T) exchange.Outbox { return open(t, time.Minute) })
	})
}

// The same cases on a Redis Cluster of 3 masters: every script and
// MULTI-free pipeline must keep to keys of one hash slot, or Redis
// answers CROSSSLOT.
func TestConformanceCluster(t *testing.T) {
	t.Run("Queue", func(t *testing.T) {
		storagetest.Queue(t, func(t *testing.T, vis time.Duration) exchange.Queue { return openCluster(t, vis) })
	})
	t.Run("Index", func(t *testing.T) {
		storagetest.Index(t, func(t *testing.T) exchange.Index { return openCluster(t, time.Minute) })
	})
	t.Run("Outbox", func(t *testing.T) {
		storagetest.Outbox(t, func(t *testing.T) exchange.Outbox { return openCluster(t, time.Minute) })
	})
}

// A party's inbox keys live on one node (the scripts need them in one
// slot), and different parties' inboxes spread over the masters (else
// the cluster run proves little).
func TestClusterKeepsAPartyOnOneNode(t *testing.T) {
	ctx := context.Background()
	s := openCluster(t, time.Minute)
	for i := range 16 {
		m := exchange.Message{DocumentID: exchange.DocumentID("spread", "", []byte{byte(i)}), Type: "one-bill", Sender: "a", ReceivedAt: time.Now()}
		if err := s.Enqueue(ctx, m, fmt.Sprintf("party-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: testenv.RedisCluster(t)})
	defer c.Close()
	var mu sync.Mutex
	nodesOf := map[string]map[string]bool{} // party -> nodes holding its keys
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
		keys, err := n.Keys(ctx, s.Prefix+":{*").Result() // the inboxes
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			party := k[strings.Index(k, "{")+1 : strings.Index(k, "}")]
			if nodesOf[party] == nil {
				nodesOf[party] = map[string]bool{}
			}
			nodesOf[party][n.Options().Addr] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for party, nodes := range nodesOf {
		if len(nodes) != 1 {
			t.Fatalf("party %s has keys on %v; want one node", party, nodes)
		}
		for n := range nodes {
			used[n] = true
		}
	}
	if len(nodesOf) != 16 || len(used) < 2 {
		t.Fatalf("%d parties' inboxes on %d nodes; want 16 on 2 or more", len(nodesOf), len(used))
	}
}

// The inbox keys are named as they always were: a gateway of this build
// reads the inboxes an earlier build wrote. (The marks of what a party was
// sent are now sets by minute; the one set of before is still read, see
// TestAckedMessagesAreForgottenAfterTheWindow.)
func TestInboxKeyNames(t *testing.T) {
	ctx := context.Background()
	s := open(t, time.Minute)
	m := exchange.Message{DocumentID: exchange.DocumentID("names", "", []byte{1}), Type: "one-bill", Sender: "a", ReceivedAt: time.Now()}
	if err := s.Enqueue(ctx, m, "cq-rail"); err != nil {
		t.Fatal(err)
	}
	minute := fmt.Sprint(m.ReceivedAt.Unix() / 60)
	for key, typ := range map[string]string{"inbox": "stream", "delivered:" + minute: "set", "pending": "hash"} {
		if got, err := s.Cmd().Type(ctx, s.Prefix+":{cq-rail}:"+key).Result(); err != nil || got != typ {
			t.Errorf("%s:{cq-rail}:%s is a %q (%v); want a %s", s.Prefix, key, got, err, typ)
		}
	}
}

// After Redis loses its data (a restart without persistence), XREADGROUP
// answers NOGROUP; the consumer must recreate the group and go on.
func TestPullSurvivesRedisRestartingEmpty(t *testing.T) {
	ctx := context.Background()
	s := open(t, time.Minute)
	m := exchange.Message{DocumentID: exchange.DocumentID("a", "", []byte{1}), Type: "one-bill", Sender: "a", ReceivedAt: time.Now()}
	if err := s.Enqueue(ctx, m, "party-b"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pull(ctx, "party-b", 10, 0); err != nil || len(got) != 1 {
		t.Fatalf("pull = %v, %v", got, err)
	}
	if err := s.FlushForTest(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pull(ctx, "party-b", 10, 200*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("pull after flush = %v, %v; want empty and no error", got, err)
	}
	m2 := exchange.Message{DocumentID: exchange.DocumentID("a", "", []byte{2}), Type: "one-bill", Sender: "a", ReceivedAt: time.Now()}
	if err := s.Enqueue(ctx, m2, "party-b"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pull(ctx, "party-b", 10, 0); err != nil || len(got) != 1 || got[0].DocumentID != m2.DocumentID {
		t.Fatalf("pull of a new message after flush = %v, %v", got, err)
	}
}

func TestUnreachableRedisIsUnavailable(t *testing.T) {
	s := redis.New("redis://127.0.0.1:1/0")
	err := s.Open(context.Background())
	if !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("Open against a closed port = %v, want ErrUnavailable", err)
	}
	s.Close()
}
