package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// TestLiveAcrossClusterInstances runs two instances on one database and
// one Redis Cluster (JOBCHAT_REDIS_CLUSTER): typing (which only the broker
// carries) and a message made on one reach a subscriber on the other, the
// send rate limit counts in the cluster, and the fan-out used shard
// channels, never plain ones.
func TestLiveAcrossClusterInstances(t *testing.T) {
	addrs := testsvc.RedisClusterAddrs(t)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			prefix := "jobchat-test-cluster-" + randomSuffix() + ":"
			vars := map[string]string{
				"JOBCHAT_REDIS_URL":     "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr="),
				"JOBCHAT_REDIS_CLUSTER": "true",
				"JOBCHAT_REDIS_PREFIX":  prefix,
				"JOBCHAT_SEND_RATE":     "100",
			}
			dbc := dbtest.Config(t, dialect)
			instA, instB := newEnvOnDB(t, dbc, vars), newEnvOnDB(t, dbc, vars)
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := instA.openJob(t, "job-cluster", "ana", "ben", "")
			waitPublished(t, instA)

			benWS := instB.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			benInbox := benWS.subscribe(liveInboxSub, nil)
			benAct := benWS.subscribe(liveActivitySub, map[string]any{"c": conv.ID})
			liveWaitFollowers(t, instB, 2)

			instA.do(t, ana, `mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }`, map[string]any{"c": conv.ID}).ok(t, nil)
			if ev := benWS.nextEvent(benAct); ev.Kind != "TYPING_STARTED" || ev.Actor == nil || ev.Actor.ID != "ana" {
				t.Fatalf("ben's activity: %+v", ev)
			}
			instA.sendText(t, ana, conv.ID, "across the cluster")
			if ev := benWS.nextEvent(benAct); ev.Kind != "TYPING_STOPPED" {
				t.Fatalf("after ana's send, ben's activity: %+v", ev)
			}
			ev := benWS.nextEvent(benInbox)
			if ev.Kind != "MESSAGE_ADDED" || ev.Conversation.LastMessage == nil || ev.Conversation.LastMessage.MessageText != "across the cluster" {
				t.Fatalf("ben's inbox: %+v", ev)
			}

			client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
			defer client.Close()
			count := func(what string, query func(ctx context.Context, node *redis.Client) ([]string, error)) int {
				return sumOverMasters(t, client, what, func(ctx context.Context, node *redis.Client) (int, error) {
					got, err := query(ctx, node)
					return len(got), err
				})
			}
			sharded := count("pubsub shardchannels", func(ctx context.Context, node *redis.Client) ([]string, error) {
				return node.PubSubShardChannels(ctx, prefix+"*").Result()
			})
			plain := count("pubsub channels", func(ctx context.Context, node *redis.Client) ([]string, error) {
				return node.PubSubChannels(ctx, prefix+"*").Result()
			})
			if sharded == 0 || plain != 0 {
				t.Fatalf("%d shard channels and %d plain channels under %s, want some and none", sharded, plain, prefix)
			}
			buckets := count("keys", func(ctx context.Context, node *redis.Client) ([]string, error) {
				return node.Keys(ctx, prefix+"rate:*").Result()
			})
			if buckets == 0 {
				t.Fatalf("no rate limit bucket under %srate: in the cluster", prefix)
			}
		})
	}
}

// sumOverMasters runs f on every master of the cluster and adds up what
// it returns.
func sumOverMasters(tb testing.TB, client *redis.ClusterClient, what string, f func(ctx context.Context, node *redis.Client) (int, error)) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		sum int
	)
	err := client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		n, err := f(ctx, node)
		mu.Lock()
		sum += n
		mu.Unlock()
		return err
	})
	if err != nil {
		tb.Fatalf("%s on the masters: %v", what, err)
	}
	return sum
}
