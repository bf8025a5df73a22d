package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Sentinel is a Redis master, two replicas and three Sentinels (quorum 2)
// of one test's own, on free loopback ports, with the persistence the
// gateway needs. The test may kill any server; all are killed when it ends.
type Sentinel struct {
	MasterName string
	Sentinels  []string // host:port
	*servers
}

// StartSentinel starts the servers and returns once the replicas follow
// the master and every Sentinel knows both replicas and the other
// Sentinels, so a failover can be agreed on at once.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	server := lookRedis(t, "redis-server")
	sentinel, err := exec.LookPath("redis-sentinel")
	sentinelArgs := []string{}
	if err != nil { // the same program, in Sentinel mode
		sentinel, sentinelArgs = server, []string{"--sentinel"}
	}
	ports := freePorts(t, 6)
	s := &Sentinel{MasterName: "corridor", servers: newServers(t)}
	master := "127.0.0.1:" + ports[0]
	for i, port := range ports[:3] {
		args := redisArgs(t, port)
		if i > 0 {
			args = append(args, "--replicaof", "127.0.0.1", ports[0])
		}
		s.start(t, "127.0.0.1:"+port, server, args...)
	}
	for _, port := range ports[3:] {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it: one each
		text := fmt.Sprintf("bind 127.0.0.1\nport %s\ndir %s\ndaemonize no\n"+
			"sentinel monitor %s 127.0.0.1 %s 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 10000\n"+
			"sentinel parallel-syncs %[3]s 1\n", port, dir, s.MasterName, ports[0])
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + port
		s.start(t, addr, sentinel, append([]string{conf}, sentinelArgs...)...)
		s.Sentinels = append(s.Sentinels, addr)
	}
	ctx := context.Background()
	Eventually(t, time.Minute, "the replicas follow the master", func() bool {
		c := goredis.NewClient(&goredis.Options{Addr: master})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && strings.Count(info, "state=online") == 2
	})
	for _, addr := range s.Sentinels {
		Eventually(t, time.Minute, "Sentinel "+addr+" knows the replicas and the other Sentinels", func() bool {
			c := goredis.NewSentinelClient(&goredis.Options{Addr: addr})
			defer c.Close()
			replicas, err1 := c.Replicas(ctx, s.MasterName).Result()
			sentinels, err2 := c.Sentinels(ctx, s.MasterName).Result()
			return err1 == nil && err2 == nil && len(replicas) == 2 && len(sentinels) == 2
		})
	}
	return s
}

// Master asks a Sentinel which server is the master now.
func (s *Sentinel) Master(t testing.TB) string {
	t.Helper()
	for _, addr := range s.Sentinels {
		c := goredis.NewSentinelClient(&goredis.Options{Addr: addr})
		hp, err := c.GetMasterAddrByName(context.Background(), s.MasterName).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			return hp[0] + ":" + hp[1]
		}
	}
	t.Fatal("no Sentinel names a master")
	return ""
}

func lookRedis(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CORRIDOR_TEST_REQUIRE_BACKENDS") != "" {
			t.Fatalf("%s not found: scripts/test.sh installs it", name)
		}
		t.Skipf("%s not found; scripts/test.sh installs it", name)
	}
	return bin
}
