package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// The concurrency tests drive real servers from many goroutines. Helpers
// that run off the test goroutine return errors instead of failing the test
// (t.Fatal must not be called there); their names start with "conc".

const concSubscription = `subscription($c: ID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { ` + messageFields + ` } }`

// concHTTP bounds every request a sender goroutine makes.
var concHTTP = &http.Client{Timeout: 30 * time.Second}

// concPost is env.do for goroutines: one GraphQL operation over HTTP,
// returning GraphQL errors as an error.
func concPost(ctx context.Context, url, token, query string, vars map[string]any) (json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := concHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST /query: %w", err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode response (status %d): %w", resp.StatusCode, err)
	}
	if len(out.Errors) > 0 {
		return nil, fmt.Errorf("GraphQL errors (status %d): %+v", resp.StatusCode, out.Errors)
	}
	return out.Data, nil
}

// concSend sends one TEXT message with a client message id.
func concSend(ctx context.Context, url, token, conversationID, text, clientID string) (message, error) {
	data, err := concPost(ctx, url, token, sendMessage, map[string]any{"input": map[string]any{
		"conversationId": conversationID, "messageText": text, "clientMessageId": clientID,
	}})
	if err != nil {
		return message{}, err
	}
	var out struct {
		Msg message `json:"sendMessage"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return message{}, fmt.Errorf("decode sendMessage %s: %w", data, err)
	}
	return out.Msg, nil
}

// concHistory reads a conversation's whole history forward in pages of 100
// (the maximum), checking the page size and the paging cursors on the way.
func concHistory(tb testing.TB, e *env, token, conversationID string) []message {
	tb.Helper()
	const pageSize, maxPages = 100, 100
	var (
		all   []message
		after any
	)
	for page := 0; ; page++ {
		if page == maxPages {
			tb.Fatalf("history: still more after %d pages", maxPages)
		}
		var out struct {
			Messages struct {
				Edges []struct {
					Node message `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					HasNextPage bool    `json:"hasNextPage"`
					EndCursor   *string `json:"endCursor"`
				} `json:"pageInfo"`
			} `json:"messages"`
		}
		e.do(tb, token, `query($c: ID!, $first: Int, $after: String) {
  messages(conversationId: $c, first: $first, after: $after) { edges { node { `+messageFields+` } } pageInfo { hasNextPage endCursor } }
}`, map[string]any{"c": conversationID, "first": pageSize, "after": after}).ok(tb, &out)
		if n := len(out.Messages.Edges); n > pageSize {
			tb.Fatalf("history page %d has %d messages, more than first: %d", page, n, pageSize)
		}
		for _, edge := range out.Messages.Edges {
			all = append(all, edge.Node)
		}
		if !out.Messages.PageInfo.HasNextPage {
			return all
		}
		if len(out.Messages.Edges) != pageSize || out.Messages.PageInfo.EndCursor == nil {
			tb.Fatalf("history page %d: hasNextPage with %d messages and endCursor %v", page, len(out.Messages.Edges), out.Messages.PageInfo.EndCursor)
		}
		after = *out.Messages.PageInfo.EndCursor
	}
}

// concCheckSeqs fails unless ms has seqs 1..len(ms), in order, with unique ids.
func concCheckSeqs(tb testing.TB, what string, ms []message) {
	tb.Helper()
	ids := make(map[string]int, len(ms))
	for i, m := range ms {
		if m.Seq != i+1 {
			tb.Fatalf("%s: message %d has seq %d, want %d (no gap, no duplicate)", what, i, m.Seq, i+1)
		}
		if prev, dup := ids[m.ID]; dup {
			tb.Fatalf("%s: id %s at seq %d and %d", what, m.ID, prev, m.Seq)
		}
		ids[m.ID] = m.Seq
	}
}

// concSameMessages fails unless got holds exactly want's messages, in order.
func concSameMessages(tb testing.TB, what string, got, want []message) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d messages, history has %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Seq != want[i].Seq || got[i].MessageText != want[i].MessageText {
			tb.Fatalf("%s: message %d is %d/%s %q, history has %d/%s %q", what, i,
				got[i].Seq, got[i].ID, got[i].MessageText, want[i].Seq, want[i].ID, want[i].MessageText)
		}
	}
}

type concReadState struct {
	LastSeq       int  `json:"lastSeq"`
	UnreadCount   int  `json:"unreadCount"`
	MyLastReadSeq *int `json:"myLastReadSeq"`
}

func concConversationState(tb testing.TB, e *env, token, conversationID string) concReadState {
	tb.Helper()
	var out struct {
		Conversation *concReadState `json:"conversation"`
	}
	e.do(tb, token, `query($c: ID!) { conversation(id: $c) { lastSeq unreadCount myLastReadSeq } }`, map[string]any{"c": conversationID}).ok(tb, &out)
	if out.Conversation == nil {
		tb.Fatalf("conversation %s is null", conversationID)
	}
	return *out.Conversation
}

// concWaitErr waits a bounded time for a goroutine's result.
func concWaitErr(tb testing.TB, what string, errc <-chan error, limit time.Duration) {
	tb.Helper()
	select {
	case err := <-errc:
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
	case <-time.After(limit):
		tb.Fatalf("%s: not done after %s", what, limit)
	}
}

// TestConcurrentSenders has 50 goroutines, half of them each participant,
// send 4 messages each at once over HTTP. seq must come out 1..N with no gap
// or duplicate, each send must get the seq its message is stored with, and
// the read pointers must follow each sender's last message. On SQLite this
// runs the writers into each other on busy_timeout and BEGIN IMMEDIATE.
func TestConcurrentSenders(t *testing.T) {
	const goroutines, perGoroutine = 50, 4
	forEachDialect(t, func(t *testing.T, e *env) {
		conv := e.openJob(t, "job-concurrent", "ana", "ben", "Job accepted.")
		tokens := map[string]string{"ana": userToken(t, "ana", "Ana"), "ben": userToken(t, "ben", "Ben")}

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		type result struct {
			sender string
			sent   []message
			err    error
		}
		results := make([]result, goroutines)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range goroutines {
			sender := "ana"
			if g%2 == 1 {
				sender = "ben"
			}
			results[g].sender = sender
			wg.Go(func() {
				<-start
				for i := range perGoroutine {
					m, err := concSend(ctx, e.url, tokens[sender], conv.ID, fmt.Sprintf("g%d m%d", g, i), fmt.Sprintf("%s-g%d-m%d", conv.ID, g, i))
					if err != nil {
						results[g].err = fmt.Errorf("goroutine %d (%s) message %d: %w", g, sender, i, err)
						return
					}
					results[g].sent = append(results[g].sent, m)
				}
			})
		}
		close(start)
		wg.Wait() // bounded: every request has a deadline

		sentSeq := make(map[string]int) // message id -> seq its send returned
		maxSeq := map[string]int{}      // sender -> highest seq it was given
		failed := 0
		for g, r := range results {
			if r.err != nil {
				failed++
				if failed <= 5 {
					t.Errorf("%v", r.err)
				}
				continue
			}
			for i, m := range r.sent {
				if m.SenderID == nil || *m.SenderID != r.sender || m.MessageText != fmt.Sprintf("g%d m%d", g, i) {
					t.Fatalf("goroutine %d message %d came back as %+v", g, i, m)
				}
				// A goroutine's sends are sequential, so each commits after
				// the one before and must get a higher seq.
				if i > 0 && m.Seq <= r.sent[i-1].Seq {
					t.Fatalf("goroutine %d: message %d got seq %d after seq %d", g, i, m.Seq, r.sent[i-1].Seq)
				}
				if _, dup := sentSeq[m.ID]; dup {
					t.Fatalf("two sends returned message id %s", m.ID)
				}
				sentSeq[m.ID] = m.Seq
				maxSeq[r.sender] = max(maxSeq[r.sender], m.Seq)
			}
		}
		if failed > 0 {
			t.Fatalf("%d of %d sender goroutines failed (see above and the server log; on SQLite, \"database is locked\" means busy_timeout is not in effect)", failed, goroutines)
		}

		const n = 1 + goroutines*perGoroutine // the system message, then the sends
		history := concHistory(t, e, tokens["ben"], conv.ID)
		if len(history) != n {
			t.Fatalf("history has %d messages, want %d", len(history), n)
		}
		concCheckSeqs(t, "history", history)
		if history[0].MessageType != "SYSTEM" {
			t.Fatalf("seq 1 is %+v, want the system message", history[0])
		}
		for _, m := range history[1:] {
			seq, ok := sentSeq[m.ID]
			if !ok {
				t.Fatalf("history has message %s (seq %d) that no send returned", m.ID, m.Seq)
			}
			if seq != m.Seq {
				t.Fatalf("message %s: send returned seq %d, history has %d", m.ID, seq, m.Seq)
			}
			delete(sentSeq, m.ID)
		}
		if len(sentSeq) != 0 {
			t.Fatalf("%d sent messages missing from history", len(sentSeq))
		}

		for _, who := range []string{"ana", "ben"} {
			st := concConversationState(t, e, tokens[who], conv.ID)
			if st.LastSeq != n {
				t.Fatalf("%s sees lastSeq %d, want %d", who, st.LastSeq, n)
			}
			// Each sender has read up to its own newest message, whichever
			// order the transactions committed in.
			if st.MyLastReadSeq == nil || *st.MyLastReadSeq != maxSeq[who] || st.UnreadCount != n-maxSeq[who] {
				t.Fatalf("%s: myLastReadSeq %v unreadCount %d, want %d and %d", who, st.MyLastReadSeq, st.UnreadCount, maxSeq[who], n-maxSeq[who])
			}
		}
	})
}

// concWS is a websocket subscriber for goroutines: like wsClient, but it
// returns errors instead of failing the test. Every read waits at most 10s.
type concWS struct {
	conn  *websocket.Conn
	proto string
}

func concDial(url, proto, token string) (*concWS, error) {
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/query", nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", proto, err)
	}
	c := &concWS{conn: conn, proto: proto}
	if err := c.write(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{"authorization":"Bearer ` + token + `"}`)}); err != nil {
		return nil, err
	}
	m, err := c.read()
	if err != nil {
		return nil, err
	}
	if m.Type != "connection_ack" {
		_ = conn.Close()
		return nil, fmt.Errorf("want connection_ack, got %+v", m)
	}
	return c, nil
}

func (c *concWS) write(m wsMessage) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.conn.WriteJSON(m); err != nil {
		_ = c.conn.Close()
		return fmt.Errorf("websocket write: %w", err)
	}
	return nil
}

// read returns the next message other than keep-alives.
func (c *concWS) read() (wsMessage, error) {
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m wsMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			_ = c.conn.Close()
			return m, fmt.Errorf("websocket read: %w", err)
		}
		switch m.Type {
		case "ka", "pong":
			continue
		case "ping":
			if err := c.write(wsMessage{Type: "pong"}); err != nil {
				return m, err
			}
			continue
		}
		return m, nil
	}
}

// subscribe starts messageAdded on conversationID after afterSeq as
// operation id.
func (c *concWS) subscribe(id, conversationID string, afterSeq int) error {
	typ := "subscribe"
	if c.proto == "graphql-ws" {
		typ = "start"
	}
	payload, err := json.Marshal(map[string]any{"query": concSubscription, "variables": map[string]any{"c": conversationID, "after": afterSeq}})
	if err != nil {
		return err
	}
	return c.write(wsMessage{ID: id, Type: typ, Payload: payload})
}

// next reads operation id's next message.
func (c *concWS) next(id string) (message, error) {
	m, err := c.read()
	if err != nil {
		return message{}, err
	}
	want := "next"
	if c.proto == "graphql-ws" {
		want = "data"
	}
	if m.Type != want || m.ID != id {
		_ = c.conn.Close()
		return message{}, fmt.Errorf("want %s for %s, got %+v (%s)", want, id, m, m.Payload)
	}
	var p struct {
		Data struct {
			MessageAdded message `json:"messageAdded"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return message{}, fmt.Errorf("decode %s: %w", m.Payload, err)
	}
	if len(p.Errors) > 0 {
		return message{}, fmt.Errorf("subscription errors: %+v", p.Errors)
	}
	return p.Data.MessageAdded, nil
}

// concSender sends count messages from token one after the other with
// random pauses of up to 2ms, counting those committed in progress.
func concSender(ctx context.Context, e *env, token, conversationID string, count int, rng *rand.Rand, progress *atomic.Int64) error {
	for i := range count {
		if _, err := concSend(ctx, e.url, token, conversationID, fmt.Sprintf("paced %d", i), fmt.Sprintf("%s-paced-%d", conversationID, i)); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		progress.Add(1)
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	}
	return nil
}

// concSubscriber is one subscriber of a concurrency test.
type concSubscriber struct{ user, proto string }

// concWatch runs each subscriber's watch on a goroutine of its own (not in
// parallel subtests, whose number -parallel limits: the senders wait for
// every subscriber) and, once each has received its first message, runs
// send. It fails the test with every error, after all have finished; each
// goroutine is bounded by its reads' deadlines.
func concWatch(t *testing.T, subs []concSubscriber, watch func(i int, s concSubscriber, ready func()) ([]message, error), send func(ctx context.Context) error) [][]message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	readyc := make(chan struct{}, len(subs))
	sendErr := make(chan error, 1)
	go func() {
		for range subs {
			select {
			case <-readyc:
			case <-ctx.Done():
				sendErr <- fmt.Errorf("waiting for the subscribers: %w", ctx.Err())
				return
			}
		}
		sendErr <- send(ctx)
	}()

	received := make([][]message, len(subs))
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() {
			var once sync.Once
			received[i], errs[i] = watch(i, s, func() { once.Do(func() { readyc <- struct{}{} }) })
		})
	}
	wg.Wait()
	failed := false
	for i, err := range errs {
		if err != nil {
			t.Errorf("subscriber %d (%s, %s): %v", i, subs[i].user, subs[i].proto, err)
			failed = true
		}
	}
	if failed {
		cancel()
	}
	concWaitErr(t, "sending", sendErr, time.Minute)
	if failed {
		t.FailNow()
	}
	return received
}

// TestResumeAfterSeqWhileSending has subscribers read live messages, drop
// their sockets without a close handshake at random points and reconnect
// with afterSeq set to the last seq they saw, while a sender keeps sending.
// Each must end with every message exactly once, in seq order, as stored.
func TestResumeAfterSeqWhileSending(t *testing.T) {
	const sends = 150
	cases := []struct {
		name string
		subs []concSubscriber
	}{
		{"one subscriber", []concSubscriber{{"ben", "graphql-transport-ws"}}},
		{"several subscribers", []concSubscriber{
			{"ben", "graphql-transport-ws"},
			{"ana", "graphql-transport-ws"},
			{"ben", "graphql-ws"},
			{"ana", "graphql-transport-ws"},
		}},
	}
	forEachDialect(t, func(t *testing.T, e *env) {
		for ci, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tokens := map[string]string{"ana": userToken(t, "ana", "Ana"), "ben": userToken(t, "ben", "Ben")}
				conv := e.openJob(t, fmt.Sprintf("job-resume-%d", ci), "ana", "ben", "Job accepted.")
				const total = 1 + sends
				seed := uint64(time.Now().UnixNano())
				t.Logf("random seed %d", seed)

				var progress atomic.Int64
				senderDone := make(chan struct{})
				received := concWatch(t, tc.subs,
					func(i int, s concSubscriber, ready func()) ([]message, error) {
						rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
						got, outages, err := concResumeUntil(e.url, tokens[s.user], s.proto, conv.ID, total, rng, ready, &progress, senderDone)
						t.Logf("subscriber %d: %d messages, %d outages during sends", i, len(got), outages)
						if err == nil && outages == 0 {
							err = errors.New("no outage overlapped with sending; the test did not exercise resuming")
						}
						return got, err
					},
					func(ctx context.Context) error {
						defer close(senderDone)
						return concSender(ctx, e, tokens["ana"], conv.ID, sends, rand.New(rand.NewPCG(seed, 0)), &progress)
					})

				history := concHistory(t, e, tokens["ben"], conv.ID)
				if len(history) != total {
					t.Fatalf("history has %d messages, want %d", len(history), total)
				}
				concCheckSeqs(t, "history", history)
				for i, got := range received {
					concSameMessages(t, fmt.Sprintf("subscriber %d", i), got, history)
				}
			})
		}
	})
}

// concResumeUntil subscribes from afterSeq 0 and reads until seq total,
// dropping the socket abruptly after 15 to 40 messages each time and
// reconnecting with afterSeq = the last seq seen, but only after the sender
// has committed more messages (or finished). Every message must follow the
// one before by exactly one seq. outages counts the disconnections during
// which the sender committed something, which resuming had to fill.
func concResumeUntil(url, token, proto, conversationID string, total int, rng *rand.Rand,
	ready func(), progress *atomic.Int64, senderDone <-chan struct{}) (got []message, outages int, err error) {
	const maxRounds = 100
	last := 0
	for round := 0; last < total; round++ {
		if round == maxRounds {
			return got, outages, fmt.Errorf("still at seq %d of %d after %d reconnects", last, total, maxRounds)
		}
		ws, err := concDial(url, proto, token)
		if err != nil {
			return got, outages, fmt.Errorf("round %d: %w", round, err)
		}
		id := fmt.Sprintf("resume-%d", round)
		if err := ws.subscribe(id, conversationID, last); err != nil {
			return got, outages, fmt.Errorf("round %d: %w", round, err)
		}
		dropAfter := 15 + rng.IntN(26)
		for n := 0; n < dropAfter && last < total; n++ {
			m, err := ws.next(id)
			if err != nil {
				return got, outages, fmt.Errorf("round %d, after seq %d: %w", round, last, err)
			}
			if m.Seq != last+1 {
				_ = ws.conn.Close()
				return got, outages, fmt.Errorf("round %d: got seq %d, want %d", round, m.Seq, last+1)
			}
			got = append(got, m)
			last = m.Seq
			ready()
		}
		// Drop the TCP connection with no close frame, like a phone going
		// into a tunnel.
		before := progress.Load()
		_ = ws.conn.Close()
		if last >= total {
			break
		}
		// Stay away until the sender has committed a few more, so that the
		// resumed subscription has to replay them while sends continue.
		deadline := time.Now().Add(30 * time.Second)
	wait:
		for progress.Load() < before+5 {
			select {
			case <-senderDone:
				break wait
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				return got, outages, fmt.Errorf("sender made no progress in 30s (at %d)", progress.Load())
			}
		}
		if progress.Load() > before {
			outages++
		}
	}
	return got, outages, nil
}

// TestLiveOrderUnderConcurrentSends has 10 goroutines send at once while
// subscribers that started from afterSeq 0 watch: each must see seq 1..N
// strictly one by one. Concurrent commits can broadcast out of order; the
// stream must fill the gaps from the database rather than pass that on.
func TestLiveOrderUnderConcurrentSends(t *testing.T) {
	const goroutines, perGoroutine = 10, 20
	subs := []concSubscriber{
		{"ben", "graphql-transport-ws"},
		{"ana", "graphql-ws"},
	}
	forEachDialect(t, func(t *testing.T, e *env) {
		tokens := map[string]string{"ana": userToken(t, "ana", "Ana"), "ben": userToken(t, "ben", "Ben")}
		conv := e.openJob(t, "job-live-order", "ana", "ben", "Job accepted.")
		const total = 1 + goroutines*perGoroutine

		received := concWatch(t, subs,
			func(i int, s concSubscriber, ready func()) ([]message, error) {
				ws, err := concDial(e.url, s.proto, tokens[s.user])
				if err != nil {
					return nil, err
				}
				defer ws.conn.Close()
				if err := ws.subscribe("live", conv.ID, 0); err != nil {
					return nil, err
				}
				var got []message
				for want := 1; want <= total; want++ {
					m, err := ws.next("live")
					if err != nil {
						return got, fmt.Errorf("waiting for seq %d: %w", want, err)
					}
					if m.Seq != want {
						return got, fmt.Errorf("got seq %d, want %d", m.Seq, want)
					}
					got = append(got, m)
					ready()
				}
				return got, nil
			},
			func(ctx context.Context) error {
				var (
					wg   sync.WaitGroup
					mu   sync.Mutex
					errs []error
				)
				for g := range goroutines {
					token := tokens[[]string{"ana", "ben"}[g%2]]
					wg.Go(func() {
						for i := range perGoroutine {
							if _, err := concSend(ctx, e.url, token, conv.ID, fmt.Sprintf("g%d m%d", g, i), fmt.Sprintf("%s-g%d-m%d", conv.ID, g, i)); err != nil {
								mu.Lock()
								errs = append(errs, fmt.Errorf("goroutine %d message %d: %w", g, i, err))
								mu.Unlock()
								return
							}
						}
					})
				}
				wg.Wait()
				return errors.Join(errs...)
			})

		history := concHistory(t, e, tokens["ana"], conv.ID)
		if len(history) != total {
			t.Fatalf("history has %d messages, want %d", len(history), total)
		}
		concCheckSeqs(t, "history", history)
		for i, got := range received {
			concSameMessages(t, fmt.Sprintf("subscriber %d", i), got, history)
		}
	})
}

// TestSlowSubscriberCatchesUp makes a subscriber lag by not reading its
// socket while large messages are sent: once the socket's buffers and its
// send queue are full, the pushed subscription stops taking live messages
// and must catch up from the database when the client reads again, so that
// the client still gets every message once, in order.
func TestSlowSubscriberCatchesUp(t *testing.T) {
	const (
		textChars = 64000 // big messages fill the TCP buffers sooner
		maxSends  = 500   // bound on the stall; ~32 MB of text
		afterCut  = 10    // sent after the first cut-off, still stalled
		afterLive = 10    // sent after the client reads again
	)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{
				"JOBCHAT_SUBSCRIBER_BUFFER": "1",
				"JOBCHAT_MAX_MESSAGE_CHARS": fmt.Sprint(textChars),
				// The stalled client must not be cut off by the server's
				// write deadline instead.
				"JOBCHAT_WS_WRITE_TIMEOUT": "2m",
			})
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := e.openJob(t, "job-slow", "ana", "ben", "Job accepted.")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			id := ws.subscribe(concSubscription, map[string]any{"c": conv.ID, "after": 0})
			if m := ws.nextMessage(id); m.Seq != 1 {
				t.Fatalf("first message has seq %d", m.Seq)
			}
			if n := e.app.resolver.FeedStats().Resyncs; n != 0 {
				t.Fatalf("%d resyncs before the stall", n)
			}

			// Ben stops reading; Ana sends until Ben's subscription has
			// fallen behind, then a few more.
			sent := 0
			send := func() {
				t.Helper()
				text := fmt.Sprintf("%05d %s", sent, strings.Repeat("x", textChars-6))
				if _, err := concSend(ctx, e.url, ana, conv.ID, text, fmt.Sprintf("%s-slow-%d", conv.ID, sent)); err != nil {
					t.Fatalf("send %d: %v", sent, err)
				}
				sent++
			}
			for e.app.resolver.FeedStats().Resyncs == 0 {
				if sent == maxSends {
					t.Fatalf("the stalled subscriber never fell behind after %d messages of %d chars: TCP buffers absorb them all", sent, textChars)
				}
				send()
			}
			cutAt := sent
			for range afterCut {
				send()
			}
			t.Logf("subscription fell behind after %d messages; %d resyncs in all while stalled", cutAt, e.app.resolver.FeedStats().Resyncs)

			// Ben reads again: everything, in order, then live messages.
			var got []message
			read := func(upTo int) {
				t.Helper()
				for len(got) < upTo {
					m := ws.nextMessage(id)
					if m.Seq != len(got)+2 {
						t.Fatalf("got seq %d, want %d", m.Seq, len(got)+2)
					}
					got = append(got, m)
				}
			}
			read(sent)
			for range afterLive {
				send()
			}
			read(sent)

			history := concHistory(t, e, ana, conv.ID)
			concCheckSeqs(t, "history", history)
			concSameMessages(t, "slow subscriber", got, history[1:])
		})
	}
}

// TestRedisFanOutAcrossInstances runs two instances on one database, both
// fanning out through Redis: a subscriber on either instance must receive,
// live and in order, what is sent through the other.
func TestRedisFanOutAcrossInstances(t *testing.T) {
	redisURL := testsvc.RedisURL(t)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			var b [6]byte
			for i := range b {
				b[i] = byte('a' + rand.IntN(26))
			}
			vars := map[string]string{
				"JOBCHAT_REDIS_URL":    redisURL,
				"JOBCHAT_REDIS_PREFIX": "jobchat-test-" + string(b[:]) + ":",
			}
			dbc := dbtest.Config(t, dialect)
			instA := newEnvOnDB(t, dbc, vars)
			instB := newEnvOnDB(t, dbc, vars)
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := instB.openJob(t, "job-redis", "ana", "ben", "Job accepted.")

			cases := []struct {
				name            string
				subOn, sendOn   *env
				subTok, sendTok string
			}{
				{"subscriber on A, sender on B", instA, instB, ben, ana},
				{"subscriber on B, sender on A", instB, instA, ana, ben},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					start := concConversationState(t, tc.sendOn, tc.sendTok, conv.ID).LastSeq
					ws := tc.subOn.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + tc.subTok})
					id := ws.subscribe(concSubscription, map[string]any{"c": conv.ID, "after": start})
					// The first message may come from the database replay if
					// the subscription was not yet active when it committed;
					// once it has arrived the subscription is live, so the
					// rest can only come through Redis: nothing else tells
					// the subscriber's instance about them.
					for i := range 5 {
						sent := tc.sendOn.sendText(t, tc.sendTok, conv.ID, fmt.Sprintf("%s: %d", tc.name, i))
						got := ws.nextMessage(id)
						if got.ID != sent.ID || got.Seq != start+i+1 || got.MessageText != sent.MessageText {
							t.Fatalf("message %d: got %d/%s, sent %d/%s", i, got.Seq, got.ID, sent.Seq, sent.ID)
						}
					}
				})
			}
		})
	}
}
