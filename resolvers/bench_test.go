package resolvers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/graph"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/metrics"
)

// The hot paths, measured: encoding one message for a selection set, one
// message fanned out to a conversation's followers, and the send
// transaction. CI runs them once (-benchtime=1x) so that they keep
// compiling and running; the numbers in the README come from
// cmd/jobchat-bench, which measures the whole server.

const benchSubscription = `subscription($c: ID!) { messageAdded(conversationId: $c) {
	id conversationId seq senderId senderName messageText messageType clientMessageId timestamp isRead
	sender { id displayName avatarUrl } } }`

func benchResolver(b *testing.B, dialect string) (*Resolver, string) {
	b.Helper()
	hub, err := broadcast.NewHub(broadcast.NewMemoryBroker(), broadcast.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = hub.Close() })
	// Metrics on, as the server runs: their cost is part of the figures.
	r := New(dbtest.New(b, dialect), hub, Config{Observer: metrics.New(metrics.Config{})})
	conv, _, _, err := r.openConversation(context.Background(), model.CreateConversationInput{
		JobID: "job-bench", JobTitle: "Benchmark",
		Client: &model.ProfileInput{ID: "ana", DisplayName: "Ana"},
		Worker: &model.ProfileInput{ID: "ben", DisplayName: "Ben"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return r, conv.ID
}

// benchPlan compiles benchSubscription's selection the way Push does.
func benchPlan(b *testing.B, r *Resolver, conv string) (*plan, context.Context) {
	b.Helper()
	exec := executor.New(graph.NewExecutableSchema(r.Schema()))
	ctx := graphql.StartOperationTrace(context.Background())
	rc, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: benchSubscription, Variables: map[string]any{"c": conv}})
	if errs != nil {
		b.Fatal(errs)
	}
	fields := graphql.CollectFields(rc, rc.Operation.SelectionSet, []string{"Subscription"})
	p, ok := compilePlan(rc, fields[0])
	if !ok {
		b.Fatal("benchmark selection not pushable")
	}
	return p, graphql.WithOperationContext(ctx, rc)
}

func benchMessage(conv string, seq int64) *db.Message {
	sender, name, client := "ana", "Ana", fmt.Sprintf("c-%d", seq)
	return &db.Message{
		ID: db.NewID(), ConversationID: conv, Seq: seq, SenderID: &sender, SenderName: &name,
		MessageText: "On my way, I'll be there in ten minutes.", MessageType: db.MessageText,
		ClientMessageID: &client, CreatedAt: time.Now().UTC(),
	}
}

// BenchmarkEncodeMessage: one message event encoded for one selection set,
// the work done once per message however many subscribers share it.
func BenchmarkEncodeMessage(b *testing.B) {
	r, conv := benchResolver(b, dbtest.SQLite)
	p, ctx := benchPlan(b, r, conv)
	it := benchMessage(conv, 1)
	it.Known = &db.MessageState{Sender: &db.Profile{ID: "ana", DisplayName: "Ana"}}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n += len(p.encode(ctx, it))
	}
	b.SetBytes(int64(n / max(b.N, 1)))
}

// countSink stands for a socket that always has room.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Send([]byte) bool                   { s.n.Add(1); return true }
func (s *countSink) WaitRoom(ctx context.Context) error { return ctx.Err() }
func (s *countSink) Complete()                          {}

// BenchmarkFeedFanout: one broadcast message reaching the 100 followers of
// a conversation: decoded once, encoded once, queued 100 times.
func BenchmarkFeedFanout(b *testing.B) {
	const followers = 100
	r, conv := benchResolver(b, dbtest.SQLite)
	p, ctx := benchPlan(b, r, conv)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sinks := make([]*countSink, followers)
	for i := range sinks {
		sinks[i] = &countSink{}
		stop, err := r.feeds.follow(ctx, messageFeed, conv, nil, &follower{ctx: ctx, viewer: "ben", enc: p, sink: sinks[i]})
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
	}
	// Wait until every follower has caught up (there is nothing to catch up
	// on) and takes live messages.
	f := r.feeds.byKey[messageTopic(conv)]
	for deadline := time.Now().Add(10 * time.Second); ; {
		f.mu.Lock()
		live := 0
		for fl := range f.followers {
			if !fl.catching {
				live++
			}
		}
		f.mu.Unlock()
		if live == followers {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d followers live after 10s", live, followers)
		}
		time.Sleep(time.Millisecond)
	}

	var payloads [][]byte
	b.ReportAllocs()
	seq := int64(0)
	for b.Loop() {
		seq++
		if len(payloads) == 0 {
			b.StopTimer()
			payloads = make([][]byte, 0, 1024)
			for i := range int64(cap(payloads)) {
				ev, _ := json.Marshal(toWireMessage(benchMessage(conv, seq+i), &db.Profile{ID: "ana", DisplayName: "Ana"}))
				payloads = append(payloads, ev)
			}
			b.StartTimer()
		}
		if err := r.hub.Publish(ctx, conv, payloads[0]); err != nil {
			b.Fatal(err)
		}
		payloads = payloads[1:]
	}
	b.StopTimer()
	for i, s := range sinks {
		if got := s.n.Load(); got != seq {
			b.Fatalf("follower %d got %d messages, want %d", i, got, seq)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq*followers), "ns/delivery")
}

// BenchmarkSendMessage: the send transaction (seq, insert, read pointers)
// and its broadcast, one sender at a time and eight at once, on each
// dialect this run covers.
func BenchmarkSendMessage(b *testing.B) {
	for _, dialect := range dbtest.Dialects(b) {
		for _, parallel := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/senders=%d", dialect, parallel), func(b *testing.B) {
				r, conv := benchResolver(b, dialect)
				// Each sender has a conversation of its own, as senders mostly
				// do: senders in one conversation take turns on its row lock.
				convs := []string{conv}
				for i := 1; i < parallel; i++ {
					c, _, _, err := r.openConversation(context.Background(), model.CreateConversationInput{
						JobID: fmt.Sprintf("job-bench-%d", i), JobTitle: "Benchmark",
						Client: &model.ProfileInput{ID: "ana", DisplayName: "Ana"},
						Worker: &model.ProfileInput{ID: "ben", DisplayName: "Ben"},
					})
					if err != nil {
						b.Fatal(err)
					}
					convs = append(convs, c.ID)
				}
				text := "On my way, I'll be there in ten minutes."
				caller := auth.Caller{ID: "ana", Name: "Ana"}
				b.ReportAllocs()
				// Exactly `parallel` senders share b.N sends.
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for i := range parallel {
					in := model.SendMessageInput{ConversationID: convs[i], MessageText: &text}
					wg.Go(func() {
						ctx := context.Background()
						for next.Add(1) <= int64(b.N) {
							if _, err := r.send(ctx, caller, db.MessageText, in); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
			})
		}
	}
}
