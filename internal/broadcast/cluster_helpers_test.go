package broadcast_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// clusterWait bounds what a cluster takes to settle (a node rejoining, a
// reconnect after a failure): seconds, given a 2 s node timeout.
const clusterWait = 30 * time.Second

// newClusterClient connects to the cluster at addrs with the given RESP
// protocol version (0 for the client's default), and closes the client at
// cleanup.
func newClusterClient(tb testing.TB, addrs []string, protocol int) *redis.ClusterClient {
	tb.Helper()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: protocol})
	tb.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		tb.Fatalf("ping redis cluster %v: %v", addrs, err)
	}
	return client
}

// masterOf returns a client of the node owning channel's slot.
func masterOf(tb testing.TB, client *redis.ClusterClient, channel string) *redis.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	node, err := client.MasterForKey(ctx, channel)
	if err != nil {
		tb.Fatalf("master for %s: %v", channel, err)
	}
	return node
}

// shardNumSub is how many connections the node owning channel's slot has
// subscribed to it, as the shared Hub suite's "active" count.
func shardNumSub(tb testing.TB, client *redis.ClusterClient, channel string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	counts, err := masterOf(tb, client, channel).PubSubShardNumSub(ctx, channel).Result()
	if err != nil {
		tb.Fatalf("pubsub shardnumsub %s: %v", channel, err)
	}
	return int(counts[channel])
}

// perMaster runs a PUBSUB query on every master and returns its answers by
// node address.
func perMaster(tb testing.TB, client *redis.ClusterClient, query func(ctx context.Context, node *redis.Client) ([]string, error)) map[string][]string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var mu sync.Mutex
	out := map[string][]string{}
	err := client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		got, err := query(ctx, node)
		if err != nil {
			return err
		}
		mu.Lock()
		out[node.Options().Addr] = got
		mu.Unlock()
		return nil
	})
	if err != nil {
		tb.Fatalf("pubsub on every master: %v", err)
	}
	return out
}

// topicsInBuckets returns n topics named base-i, each in a bucket of its
// own, where n <= broadcast.ShardBuckets.
func topicsInBuckets(base string, n int) []string {
	seen := map[int]bool{}
	var topics []string
	for i := 0; len(topics) < n; i++ {
		t := fmt.Sprintf("%s-%d", base, i)
		if b := broadcast.ShardBucket(t); !seen[b] {
			seen[b] = true
			topics = append(topics, t)
		}
	}
	return topics
}

// privateCluster is a 3-master Redis Cluster of the test's own on loopback
// ports (replicas may be added), so that the test may kill and restart its nodes without
// disturbing anyone else.
type privateCluster struct {
	tb    testing.TB
	dir   string
	nodes []*clusterNode
}

type clusterNode struct {
	port, busPort string
	cmd           *exec.Cmd
	done          chan struct{}
}

func (n *clusterNode) addr() string { return "127.0.0.1:" + n.port }

// startPrivateCluster starts three redis-server nodes with cluster mode on
// and joins them with redis-cli --cluster create. It runs where the shared
// test cluster is configured (and so always in CI, which has the Redis
// tools for it).
func startPrivateCluster(tb testing.TB) *privateCluster {
	tb.Helper()
	testsvc.RedisClusterAddrs(tb)
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testsvc.InCI() {
				tb.Fatalf("%s is not installed", tool)
			}
			tb.Skipf("%s is not installed", tool)
		}
	}
	c := &privateCluster{tb: tb, dir: tb.TempDir()}
	tb.Cleanup(c.stop)
	// Each node takes a client port and a cluster bus port, both free.
	for range 3 {
		c.nodes = append(c.nodes, &clusterNode{port: freePort(tb), busPort: freePort(tb)})
	}
	for i, n := range c.nodes {
		// A port found free may be taken by another test's process before
		// the node binds it: the node then exits, and gets new ports.
		for attempt := 1; ; attempt++ {
			err := c.launch(i)
			if err == nil {
				break
			}
			if attempt == 3 || !errors.Is(err, errNodeExited) {
				tb.Fatal(err)
			}
			n.port, n.busPort = freePort(tb), freePort(tb)
		}
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK()
	return c
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func (c *privateCluster) addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr())
	}
	return out
}

// start starts node i, with its nodes.conf of before if it has one, and
// waits until it answers.
func (c *privateCluster) start(i int) {
	c.tb.Helper()
	if err := c.launch(i); err != nil {
		c.tb.Fatal(err)
	}
}

// errNodeExited is a node that exited before it answered.
var errNodeExited = errors.New("exited before it answered")

// launch is start, reporting what went wrong instead of failing the test.
func (c *privateCluster) launch(i int) error {
	n := c.nodes[i]
	logFile := filepath.Join(c.dir, "redis-"+n.port+".log")
	n.cmd = exec.Command("redis-server", "--port", n.port, "--cluster-port", n.busPort,
		"--bind", "127.0.0.1", "--dir", c.dir,
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+n.port+".conf",
		"--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
		// A replica is in sync at once, not after the default 5 s wait
		// for more replicas.
		"--repl-diskless-sync-delay", "0",
		"--logfile", logFile)
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(n.cmd, n.done)
	client := c.node(i)
	defer client.Close()
	deadline := time.Now().Add(clusterWait)
	for client.Ping(context.Background()).Err() != nil {
		select {
		case <-n.done:
			n.cmd = nil
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("cluster node %s %w:\n%s", n.addr(), errNodeExited, log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster node %s not answering after %v", n.addr(), clusterWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// node returns a plain client of node i; the caller closes it.
func (c *privateCluster) node(i int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: c.nodes[i].addr(), MaxRetries: -1})
}

// kill kills node i, as a crash would: its connections drop at once.
func (c *privateCluster) kill(i int) {
	n := c.nodes[i]
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

func (c *privateCluster) stop() {
	for i := range c.nodes {
		c.kill(i)
	}
}

// waitOK waits until every running node reports cluster_state:ok.
func (c *privateCluster) waitOK() {
	c.tb.Helper()
	deadline := time.Now().Add(clusterWait)
	for i, n := range c.nodes {
		if n.cmd == nil {
			continue
		}
		client := c.node(i)
		for {
			info, err := client.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				_ = client.Close()
				c.tb.Fatalf("cluster node %s not ok after %v: %v %s", n.addr(), clusterWait, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = client.Close()
	}
}

// addReplica starts a new node and makes it a replica of node i, so that
// the cluster fails over when i dies; it returns the new node's index.
func (c *privateCluster) addReplica(i int) int {
	c.tb.Helper()
	c.nodes = append(c.nodes, &clusterNode{port: freePort(c.tb), busPort: freePort(c.tb)})
	r := len(c.nodes) - 1
	c.start(r)
	master := c.node(i)
	defer master.Close()
	ctx := context.Background()
	id, err := master.Do(ctx, "cluster", "myid").Text()
	if err != nil {
		c.tb.Fatalf("cluster myid: %v", err)
	}
	out, err := exec.Command("redis-cli", "--cluster", "add-node", c.nodes[r].addr(), c.nodes[i].addr(),
		"--cluster-slave", "--cluster-master-id", id).CombinedOutput()
	if err != nil {
		c.tb.Fatalf("redis-cli --cluster add-node: %v\n%s", err, out)
	}
	replica := c.node(r)
	defer replica.Close()
	deadline := time.Now().Add(clusterWait)
	for {
		info, err := replica.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("replica %s not linked to its master after %v: %v %s", c.nodes[r].addr(), clusterWait, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The masters learn of the replica by gossip; one that has not could
	// not vote for it when its master fails.
	for j := range c.nodes {
		node := c.node(j)
		for {
			nodes, err := node.ClusterNodes(ctx).Result()
			if err == nil && knowsReplica(nodes, c.nodes[r].addr(), id) {
				break
			}
			if time.Now().After(deadline) {
				_ = node.Close()
				c.tb.Fatalf("node %s does not know replica %s after %v: %v\n%s", c.nodes[j].addr(), c.nodes[r].addr(), clusterWait, err, nodes)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = node.Close()
	}
	c.waitOK()
	return r
}

// knowsReplica reports whether CLUSTER NODES lists addr as a connected
// replica of master.
func knowsReplica(nodes, addr, master string) bool {
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		// <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> ...
		if len(f) >= 8 && strings.HasPrefix(f[1], addr+"@") && strings.Contains(f[2], "slave") && f[3] == master && f[7] == "connected" {
			return true
		}
	}
	return false
}

// running returns a client of a running node; the caller closes it.
func (c *privateCluster) running() *redis.Client {
	i := 0
	for c.nodes[i].cmd == nil {
		i++
	}
	return c.node(i)
}

// describe returns CLUSTER NODES as a running node sees it, for a failure
// message.
func (c *privateCluster) describe() string {
	client := c.running()
	defer client.Close()
	nodes, err := client.ClusterNodes(context.Background()).Result()
	if err != nil {
		return err.Error()
	}
	return nodes
}

// owner returns the index of the node owning channel's slot: the one
// running node that, in its own view, lists itself as the slot's master.
// Other nodes' views can lag (gossip), so it asks each node about itself
// and waits, bounded, until exactly one claims the slot.
func (c *privateCluster) owner(channel string) int {
	c.tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(clusterWait)
	for {
		var claims []int
		var slot int64
		for i, n := range c.nodes {
			if n.cmd == nil {
				continue
			}
			client := c.node(i)
			var err error
			slot, err = client.ClusterKeySlot(ctx, channel).Result()
			if err != nil {
				client.Close()
				c.tb.Fatalf("cluster keyslot: %v", err)
			}
			shards, err := client.ClusterSlots(ctx).Result()
			client.Close()
			if err != nil {
				c.tb.Fatalf("cluster slots: %v", err)
			}
			for _, s := range shards {
				if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 && s.Nodes[0].Addr == n.addr() {
					claims = append(claims, i)
				}
			}
		}
		if len(claims) == 1 {
			return claims[0]
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("slot %d claimed by nodes %v, want exactly one\n%s", slot, claims, c.describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// moveSlot hands channel's slot from node from to node to, the way
// resharding does (IMPORTING, MIGRATING, then NODE everywhere); the slot
// holds no keys, so there is nothing to migrate.
func (c *privateCluster) moveSlot(channel string, from, to int) {
	c.tb.Helper()
	ctx := context.Background()
	ids := make([]string, len(c.nodes))
	clients := make([]*redis.Client, len(c.nodes))
	for i := range c.nodes {
		clients[i] = c.node(i)
		defer clients[i].Close()
		id, err := clients[i].Do(ctx, "cluster", "myid").Text()
		if err != nil {
			c.tb.Fatalf("cluster myid: %v", err)
		}
		ids[i] = id
	}
	slot, err := clients[from].ClusterKeySlot(ctx, channel).Result()
	if err != nil {
		c.tb.Fatalf("cluster keyslot: %v", err)
	}
	steps := []struct {
		node int
		args []any
	}{
		{to, []any{"cluster", "setslot", slot, "importing", ids[from]}},
		{from, []any{"cluster", "setslot", slot, "migrating", ids[to]}},
		{to, []any{"cluster", "setslot", slot, "node", ids[to]}},
		{from, []any{"cluster", "setslot", slot, "node", ids[to]}},
	}
	for i := range c.nodes {
		if i != from && i != to {
			steps = append(steps, struct {
				node int
				args []any
			}{i, []any{"cluster", "setslot", slot, "node", ids[to]}})
		}
	}
	for _, s := range steps {
		if err := clients[s.node].Do(ctx, s.args...).Err(); err != nil {
			c.tb.Fatalf("%v on %s: %v", s.args, c.nodes[s.node].addr(), err)
		}
	}
}
