package main

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// sendsTimed is how many sends each phase times.
const sendsTimed = 9

// timedSend sends as e.sendText does and says how long the answer took.
func timedSend(tb testing.TB, e *env, token, conv, text string) (message, time.Duration) {
	tb.Helper()
	start := time.Now()
	m := e.sendText(tb, token, conv, text)
	return m, time.Since(start)
}

// TestStallRedisDown: with Redis gone, sends answer at once (nothing waits
// for Redis), and a subscriber on the other instance still gets every
// message, in a conversation that stays quiet afterwards: by the sweep
// while Redis is down, or, with a sweep too rare to matter, by the catch-up
// that runs as soon as Redis is back. The bounds are generous functional
// ones, not measurements.
func TestStallRedisDown(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		for _, c := range []struct {
			name  string
			sweep string
		}{
			{"sweep", "1s"},
			{"resume", "1h"},
		} {
			t.Run(dialect+"/"+c.name, func(t *testing.T) {
				rs := testsvc.StartPrivateRedis(t)
				vars := map[string]string{
					"JOBCHAT_REDIS_URL":    rs.URL(),
					"JOBCHAT_REDIS_PREFIX": "jobchat-stall-" + randomSuffix() + ":",
					"JOBCHAT_FEED_SWEEP":   c.sweep,
				}
				dbc := dbtest.Config(t, dialect)
				instA, instB := newEnvOnDB(t, dbc, vars), newEnvOnDB(t, dbc, vars)
				ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
				conv := instA.openJob(t, "job-stall", "ana", "ben", "")
				ws := instB.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
				sub := ws.subscribe(apiSubscription, map[string]any{"c": conv.ID})
				liveWaitFollowers(t, instB, 1)

				var first message
				var up []time.Duration
				for i := range sendsTimed {
					m, d := timedSend(t, instA, ana, conv.ID, "before the fault "+strconv.Itoa(i))
					if got := ws.nextMessage(sub); got.Seq != m.Seq {
						t.Fatalf("live: got seq %d, want %d", got.Seq, m.Seq)
					}
					first, up = m, append(up, d)
				}

				rs.Stop()
				var lost message
				var down []time.Duration
				for i := range sendsTimed {
					m, d := timedSend(t, instA, ana, conv.ID, "I'm outside, please open the gate "+strconv.Itoa(i))
					lost, down = m, append(down, d)
				}
				slices.Sort(up)
				slices.Sort(down)
				t.Logf("send latency over %d sends: Redis up median %v, max %v; Redis down median %v, max %v",
					sendsTimed, up[sendsTimed/2], up[sendsTimed-1], down[sendsTimed/2], down[sendsTimed-1])
				if worst := down[sendsTimed-1]; worst > time.Second {
					t.Errorf("a send with Redis down took %v: it waited for Redis", worst)
				}

				if c.name == "sweep" {
					// Redis is still down: the sweep alone delivers.
					waitSeqs(t, ws, sub, first.Seq+1, lost.Seq, 5*time.Second)
					rs.Start()
					eventuallyResumed(t, instA, instB)
					after, _ := timedSend(t, instA, ana, conv.ID, "after the fault")
					waitSeqs(t, ws, sub, after.Seq, after.Seq, 5*time.Second)
					return
				}

				// A sweep an hour away: nothing until Redis is back, then the
				// catch-up on reconnection, with no further message.
				time.Sleep(300 * time.Millisecond)
				rs.Start()
				back := time.Now()
				waitSeqs(t, ws, sub, first.Seq+1, lost.Seq, 5*time.Second)
				t.Logf("messages lost in the outage delivered %v after Redis was back", time.Since(back))
				eventuallyResumed(t, instA, instB)
			})
		}
	}
}

// waitSeqs reads sub's messages until it has had from..to in order, each
// once, failing after bound.
func waitSeqs(tb testing.TB, ws *wsClient, sub string, from, to int, bound time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(bound)
	for want := from; want <= to; want++ {
		if time.Now().After(deadline) {
			tb.Fatalf("seq %d not delivered within %v", want, bound)
		}
		if got := ws.nextMessage(sub); got.Seq != want {
			tb.Fatalf("got seq %d, want %d (in order, once each)", got.Seq, want)
		}
	}
	if time.Now().After(deadline) {
		tb.Fatalf("seqs %d..%d delivered, but after %v", from, to, bound)
	}
}

// eventuallyResumed waits until every instance's broker has its
// connection back.
func eventuallyResumed(tb testing.TB, envs ...*env) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, e := range envs {
		for e.app.hub.Stats().Resumes == 0 {
			if time.Now().After(deadline) {
				tb.Fatal("broker connection not back within 10s of Redis")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitPublished waits until e's publish queue has handed everything queued
// so far to the broker: a test that subscribes next then sees only what is
// published after. Sends answer before their broadcast is out (it is
// queued), so without it a subscriber may get an event committed just
// before it subscribed.
func waitPublished(tb testing.TB, e *env) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.app.hub.Stats()
		if st.Published+st.PublishFailed >= st.Enqueued {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("publish queue not handed over within 10s: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}
