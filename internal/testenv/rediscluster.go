package testenv

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// clusterNodeTimeout is the cluster-node-timeout of StartRedisCluster:
// a master that has not answered for this long is failed, and its replica
// takes over a second or two later.
const clusterNodeTimeout = 2 * time.Second

// OwnRedisCluster is a Redis Cluster of one test's own: 3 masters, each with
// one replica, on free loopback ports (each node's bus on a port of its
// own), with the persistence the gateway needs. The test may kill any node
// and start it again; all are killed when it ends.
type OwnRedisCluster struct {
	Nodes []string // host:port
	*servers
}

// StartRedisCluster starts the 6 nodes, makes them a cluster with
// `redis-cli --cluster create --cluster-replicas 1`, and returns once every
// node sees every slot served and every master has a replica in sync.
func StartRedisCluster(t testing.TB) *OwnRedisCluster {
	t.Helper()
	server, cli := lookRedis(t, "redis-server"), lookRedis(t, "redis-cli")
	const nodes = 6
	ports := freePorts(t, 2*nodes)
	c := &OwnRedisCluster{servers: newServers(t)}
	for i, port := range ports[:nodes] {
		addr := "127.0.0.1:" + port
		c.start(t, addr, server, append(redisArgs(t, port), "--cluster-enabled", "yes",
			"--cluster-port", ports[nodes+i], "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout.Milliseconds())))...)
		c.Nodes = append(c.Nodes, addr)
	}
	for _, addr := range c.Nodes {
		Eventually(t, time.Minute, "redis-server "+addr+" answers", func() bool {
			return askNode(addr, func(r *goredis.Client) error { return r.Ping(context.Background()).Err() })
		})
	}
	args := append(append([]string{"--cluster", "create"}, c.Nodes...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(t)
	return c
}

// Start starts a killed node again (with its data and nodes.conf) and
// waits until the cluster is whole: a master that was failed over rejoins
// as its successor's replica.
func (c *OwnRedisCluster) Start(t testing.TB, addr string) {
	t.Helper()
	c.spawn(t, addr)
	c.waitHealthy(t)
}

// waitHealthy waits until every running node sees the cluster ok and
// knows every node, and the 3 masters each have a replica in sync.
func (c *OwnRedisCluster) waitHealthy(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	known := "cluster_known_nodes:" + strconv.Itoa(len(c.Nodes))
	for _, addr := range c.running() {
		Eventually(t, time.Minute, "Redis Cluster node "+addr+" sees the cluster ok", func() bool {
			return askNode(addr, func(r *goredis.Client) error {
				info, err := r.ClusterInfo(ctx).Result()
				if err == nil && !(strings.Contains(info, "cluster_state:ok") && strings.Contains(info, known)) {
					err = goredis.Nil
				}
				return err
			})
		})
	}
	Eventually(t, time.Minute, "each of 3 masters has a replica in sync", func() bool {
		masters := 0
		for _, addr := range c.running() {
			var info string
			if !askNode(addr, func(r *goredis.Client) (err error) { info, err = r.Info(ctx, "replication").Result(); return err }) {
				return false
			}
			switch {
			case strings.Contains(info, "role:master") && strings.Contains(info, "state=online"):
				masters++
			case strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up"):
			default:
				return false
			}
		}
		return masters == 3
	})
}

// MasterOf asks the running nodes which one is the master of key's hash
// slot now; a node that has not yet heard of a failover names the old one.
func (c *OwnRedisCluster) MasterOf(t testing.TB, key string) string {
	t.Helper()
	ctx := context.Background()
	for _, addr := range c.running() {
		master := ""
		askNode(addr, func(r *goredis.Client) error {
			slot, err := r.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				return err
			}
			shards, err := r.ClusterShards(ctx).Result()
			for _, sh := range shards {
				for _, n := range sh.Nodes {
					if n.Role == "master" && slices.ContainsFunc(sh.Slots, func(s goredis.SlotRange) bool { return s.Start <= slot && slot <= s.End }) {
						master = n.IP + ":" + strconv.FormatInt(n.Port, 10)
					}
				}
			}
			return err
		})
		if master != "" {
			return master
		}
	}
	t.Fatalf("no running node names the master of %q", key)
	return ""
}

// ReplicasOf asks a master which replicas it has.
func (c *OwnRedisCluster) ReplicasOf(t testing.TB, master string) []string {
	t.Helper()
	var info string
	if !askNode(master, func(r *goredis.Client) (err error) {
		info, err = r.Info(context.Background(), "replication").Result()
		return err
	}) {
		t.Fatalf("master %s does not answer", master)
	}
	var out []string
	for line := range strings.Lines(info) { // slave0:ip=127.0.0.1,port=6380,state=online,...
		if _, fields, ok := strings.Cut(line, ":ip="); ok && strings.HasPrefix(line, "slave") {
			ip, rest, _ := strings.Cut(fields, ",port=")
			port, _, _ := strings.Cut(rest, ",")
			out = append(out, ip+":"+port)
		}
	}
	return out
}

func (c *OwnRedisCluster) running() []string {
	var out []string
	for _, addr := range c.Nodes {
		if c.up(addr) {
			out = append(out, addr)
		}
	}
	return out
}

// ask runs fn on a connection to the node at addr and reports whether it
// succeeded.
func askNode(addr string, fn func(*goredis.Client) error) bool {
	r := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer r.Close()
	return fn(r) == nil
}
