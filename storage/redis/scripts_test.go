package redis_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// sent counts the commands a store sends, by name.
type sent struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *sent) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *sent) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}
func (c *sent) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}
func (c *sent) count(cmd goredis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[cmd.Name()]++
}
func (c *sent) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// Scripts go as EVALSHA; a server that lost its scripts (flushed here, as a
// restart or a failover leaves it) gets them again with EVAL, and every
// write still does what it says: on one server and on the cluster.
func TestScriptsSurviveAFlushedScriptCache(t *testing.T) {
	for name, c := range map[string]struct {
		open  func(t *testing.T) *redis.Store
		flush func(t *testing.T)
	}{
		"Server": {func(t *testing.T) *redis.Store { return open(t, time.Minute) }, func(t *testing.T) {
			opt, err := goredis.ParseURL(testenv.RedisURL(t))
			if err != nil {
				t.Fatal(err)
			}
			c := goredis.NewClient(opt)
			defer c.Close()
			if err := c.ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		"Cluster": {func(t *testing.T) *redis.Store { return openCluster(t, time.Minute) }, func(t *testing.T) {
			for _, addr := range testenv.RedisCluster(t) {
				c := goredis.NewClient(&goredis.Options{Addr: addr})
				err := c.ScriptFlush(context.Background()).Err()
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := c.open(t)
			cmds := &sent{n: map[string]int{}}
			s.AddHook(cmds)
			msg := func(i int) exchange.Message {
				return exchange.Message{DocumentID: exchange.DocumentID("cq-rail", string(rune('a'+i)), nil), Type: "tracking-event",
					Sender: "cq-rail", SHA256: "00", ReceivedAt: time.Now()}
			}
			c.flush(t)
			if err := s.Enqueue(ctx, msg(0), "p1", "p2"); err != nil {
				t.Fatalf("enqueue after a flush: %v", err)
			}
			if n := cmds.take(); n["evalsha"] != 2 || n["eval"] != 2 {
				t.Errorf("after a flush: %v, want 2 evalsha answered NOSCRIPT, then 2 eval", n)
			}
			if err := s.Enqueue(ctx, msg(1), "p1", "p2"); err != nil {
				t.Fatal(err)
			}
			if n := cmds.take(); n["evalsha"] != 2 || n["eval"] != 0 {
				t.Errorf("with the scripts loaded: %v, want 2 evalsha and no eval", n)
			}
			c.flush(t)
			if id, _, err := s.Claim(ctx, "event:e1", "doc-1", time.Now(), time.Now().Add(-time.Minute)); err != nil || id != "doc-1" {
				t.Fatalf("claim after a flush = %q, %v", id, err)
			}
			c.flush(t)
			rec := exchange.Record{Receipt: exchange.Receipt{ID: "doc-1", Type: "tracking-event", Sender: "cq-rail", ReceivedAt: time.Now()},
				Keys: []string{"event:e1"}}
			if err := s.Add(ctx, rec, nil); err != nil {
				t.Fatalf("add after a flush: %v", err)
			}
			if id, err := s.Lookup(ctx, "event:e1"); err != nil || id != "doc-1" {
				t.Fatalf("the key's holder after add = %q, %v; want doc-1", id, err)
			}
			msgs, err := s.Pull(ctx, "p1", 10, 0)
			if err != nil || len(msgs) != 2 {
				t.Fatalf("pull = %d messages, %v; want 2", len(msgs), err)
			}
			c.flush(t)
			if n, err := s.Ack(ctx, "p1", []string{msgs[0].DocumentID, msgs[1].DocumentID}); err != nil || n != 2 {
				t.Fatalf("ack after a flush = %d, %v; want 2", n, err)
			}
		})
	}
}

// On a cluster, a write whose scripts ran on one master and got NOSCRIPT
// on another runs again whole with EVAL: the scripts that ran run twice,
// and must change nothing the second time (no second inbox entry, the key
// still held by its document).
func TestScriptsRunAgainWhereOneMasterLostThem(t *testing.T) {
	ctx := context.Background()
	s := openCluster(t, time.Minute)
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: testenv.RedisCluster(t)})
	defer cc.Close()
	master := func(key string) *goredis.Client {
		t.Helper()
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Two parties and two natural keys whose masters differ.
	var parties, keys [2]string
	parties[0], keys[0] = "p0", "event:k0"
	for i := 1; parties[1] == "" || keys[1] == ""; i++ {
		p, k := "p"+strconv.Itoa(i), "event:k"+strconv.Itoa(i)
		if parties[1] == "" && master(s.Prefix+":{"+p+"}:inbox") != master(s.Prefix+":{p0}:inbox") {
			parties[1] = p
		}
		if keys[1] == "" && master(s.Prefix+":key:"+k) != master(s.Prefix+":key:event:k0") {
			keys[1] = k
		}
	}
	msg := func(i int) exchange.Message {
		return exchange.Message{DocumentID: exchange.DocumentID("cq-rail", "m"+strconv.Itoa(i), nil), Type: "tracking-event",
			Sender: "cq-rail", SHA256: "00", ReceivedAt: time.Now()}
	}
	cmds := &sent{n: map[string]int{}}
	s.AddHook(cmds)
	flush := func(key string) {
		t.Helper()
		if err := master(key).ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.Enqueue(ctx, msg(0), parties[:]...); err != nil { // both masters load the script
		t.Fatal(err)
	}
	flush(s.Prefix + ":{" + parties[1] + "}:inbox")
	cmds.take()
	if err := s.Enqueue(ctx, msg(1), parties[:]...); err != nil {
		t.Fatalf("enqueue with the script on one master only: %v", err)
	}
	if n := cmds.take(); n["evalsha"] != 2 || n["eval"] != 2 {
		t.Errorf("enqueue: %v, want 2 evalsha (one ran, one NOSCRIPT), then 2 eval", n)
	}
	for _, p := range parties {
		msgs, err := s.Pull(ctx, p, 10, 0)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("%s pulled %d messages, %v; want 2 (m0, m1 once each)", p, len(msgs), err)
		}
	}

	rec := exchange.Record{Receipt: exchange.Receipt{ID: "doc-1", Type: "tracking-event", Sender: "cq-rail", ReceivedAt: time.Now()},
		Keys: keys[:]}
	for _, k := range keys { // both masters load the script
		if _, _, err := s.Claim(ctx, k, "doc-1", time.Now(), time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	flush(s.Prefix + ":key:" + keys[1])
	cmds.take()
	if err := s.Add(ctx, rec, nil); err != nil {
		t.Fatalf("add with the script on one master only: %v", err)
	}
	if n := cmds.take(); n["eval"] != 2 {
		t.Errorf("add: %v, want the two confirms again as eval", n)
	}
	for _, k := range keys {
		if id, err := s.Lookup(ctx, k); err != nil || id != "doc-1" {
			t.Errorf("the holder of %s = %q, %v; want doc-1", k, id, err)
		}
	}
}
