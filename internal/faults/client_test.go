package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// What the clients ask for.
const (
	createConversationOp = `mutation($input: CreateConversationInput!) { createConversationForJob(input: $input) { id } }`
	sendMessageOp        = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq clientMessageId } }`
	messageAddedOp       = `subscription($c: ID!, $a: Int) { messageAdded(conversationId: $c, afterSeq: $a) { id seq clientMessageId } }`
)

// Client timing. An attempt that takes longer than attemptTimeout is given
// up (a paused instance never answers) and retried, on the other instance,
// after retryPause; a message is given up after sendDeadline.
const (
	attemptTimeout = 1500 * time.Millisecond
	retryPause     = 100 * time.Millisecond
	sendDeadline   = 20 * time.Second
	wsReadGuard    = 30 * time.Second // longer than any fault: only a hang guard
)

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// post runs one GraphQL operation over HTTP against base and decodes its
// data into out; a transport failure, a status other than 200 or any
// GraphQL error is an error.
func post(ctx context.Context, base, token, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("status %d: decode: %w", resp.StatusCode, err)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("status %d: %s (%v)", resp.StatusCode, r.Errors[0].Message, r.Errors[0].Extensions["code"])
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.Unmarshal(r.Data, out)
}

// sent is one message a sender tried to send, and what became of it.
type sent struct {
	cid      string // clientMessageId, the same on every attempt
	conv     string
	acked    bool
	id       string
	seq      int
	via      string // the instance whose answer acknowledged it
	attempts int
	ackAt    time.Time
	lastErr  string
}

// send sends one TEXT message as token's user, starting on instance first
// and retrying with the same clientMessageId, alternating instances, until
// it is acknowledged, sendDeadline passes or ctx ends.
func send(ctx context.Context, insts []*instance, first int, token, conv, cid string) *sent {
	s := &sent{cid: cid, conv: conv}
	deadline := time.Now().Add(sendDeadline)
	input := map[string]any{"conversationId": conv, "clientMessageId": cid, "messageText": "message " + cid}
	for i := first; ctx.Err() == nil && time.Now().Before(deadline); i++ {
		in := insts[i%len(insts)]
		s.attempts++
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		var out struct {
			Msg struct {
				ID              string `json:"id"`
				Seq             int    `json:"seq"`
				ClientMessageID string `json:"clientMessageId"`
			} `json:"sendMessage"`
		}
		err := post(actx, in.url, token, sendMessageOp, map[string]any{"input": input}, &out)
		cancel()
		if err == nil {
			s.acked, s.id, s.seq, s.via, s.ackAt = true, out.Msg.ID, out.Msg.Seq, in.name, time.Now()
			if out.Msg.ClientMessageID != cid {
				s.lastErr = fmt.Sprintf("answer has clientMessageId %q", out.Msg.ClientMessageID)
			}
			return s
		}
		s.lastErr = fmt.Sprintf("%s: %v", in.name, err)
		select {
		case <-ctx.Done():
		case <-time.After(retryPause):
		}
	}
	return s
}

// sender sends to one conversation at a steady pace, one message at a
// time, from its home instance.
type sender struct {
	name  string // also the prefix of its clientMessageIds
	token string
	conv  string
	home  int
	msgs  []*sent // written by run only, read after it returned
}

// run sends until stop is closed, pausing interval between messages; the
// message under way when stop closes is finished (retries included).
func (s *sender) run(ctx context.Context, insts []*instance, interval time.Duration, stop <-chan struct{}) {
	for i := 1; ; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		s.msgs = append(s.msgs, send(ctx, insts, s.home, s.token, s.conv, fmt.Sprintf("%s-%d", s.name, i)))
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// received is one messageAdded event as a subscriber got it.
type received struct {
	id, cid string
	seq     int
	at      time.Time // when the frame was read off the socket
	inst    string    // the instance that sent it
}

// session is one connection of a subscriber.
type session struct {
	inst       string
	start, end time.Time
	afterSeq   int
	err        string
}

// subscriber follows one conversation's messageAdded over
// graphql-transport-ws. When its socket ends it reconnects, to the other
// instance first, and resumes with afterSeq set to the last seq it got.
type subscriber struct {
	name  string
	token string
	conv  string
	home  int

	last atomic.Int64 // the last seq received, for polling while it runs

	// Written by run only, read after it returned.
	got      []received
	sessions []session
}

// run follows the conversation until ctx ends.
func (s *subscriber) run(ctx context.Context, insts []*instance) {
	for i := s.home; ctx.Err() == nil; i++ {
		in := insts[i%len(insts)]
		ss := session{inst: in.name, start: time.Now(), afterSeq: int(s.last.Load())}
		err := s.follow(ctx, in)
		ss.end = time.Now()
		if err != nil && ctx.Err() == nil {
			ss.err = err.Error()
		}
		s.sessions = append(s.sessions, ss)
		select {
		case <-ctx.Done():
		case <-time.After(retryPause):
		}
	}
}

type wsFrame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// follow is one session: connect, subscribe after the last seq, and
// record events until the socket or the subscription ends.
func (s *subscriber) follow(ctx context.Context, in *instance) error {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 2 * time.Second}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	conn, _, err := d.DialContext(dctx, "ws"+strings.TrimPrefix(in.url, "http")+"/query", nil)
	cancel()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	// Closing the connection is what interrupts a blocked read when ctx
	// ends.
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(func() { _ = conn.UnderlyingConn().Close() }) }
	defer closeConn()
	stop := context.AfterFunc(ctx, closeConn)
	defer stop()

	write := func(f wsFrame) error {
		_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		return conn.WriteJSON(f)
	}
	init, _ := json.Marshal(map[string]string{"authorization": "Bearer " + s.token})
	if err := write(wsFrame{Type: "connection_init", Payload: init}); err != nil {
		return fmt.Errorf("connection_init: %w", err)
	}
	acked := false
	for !acked {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f wsFrame
		if err := conn.ReadJSON(&f); err != nil {
			return fmt.Errorf("waiting for connection_ack: %w", err)
		}
		switch f.Type {
		case "connection_ack":
			acked = true
		case "ping":
			if err := write(wsFrame{Type: "pong"}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("want connection_ack, got %s %s", f.Type, f.Payload)
		}
	}
	sub, _ := json.Marshal(map[string]any{"query": messageAddedOp, "variables": map[string]any{"c": s.conv, "a": s.last.Load()}})
	if err := write(wsFrame{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(wsReadGuard))
		_, data, err := conn.ReadMessage()
		at := time.Now()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		var f wsFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("frame %q: %w", data, err)
		}
		switch f.Type {
		case "ping":
			if err := write(wsFrame{Type: "pong"}); err != nil {
				return err
			}
		case "pong":
		case "next":
			var p struct {
				Data struct {
					Msg struct {
						ID              string `json:"id"`
						Seq             int    `json:"seq"`
						ClientMessageID string `json:"clientMessageId"`
					} `json:"messageAdded"`
				} `json:"data"`
				Errors []gqlError `json:"errors"`
			}
			if err := json.Unmarshal(f.Payload, &p); err != nil {
				return fmt.Errorf("next %s: %w", f.Payload, err)
			}
			if len(p.Errors) > 0 {
				return fmt.Errorf("next with errors: %s", f.Payload)
			}
			m := p.Data.Msg
			s.got = append(s.got, received{id: m.ID, cid: m.ClientMessageID, seq: m.Seq, at: at, inst: in.name})
			if int64(m.Seq) > s.last.Load() {
				s.last.Store(int64(m.Seq))
			}
		case "error", "complete":
			return fmt.Errorf("subscription ended: %s %s", f.Type, f.Payload)
		default:
			return errors.New("unexpected frame " + string(data))
		}
	}
}
