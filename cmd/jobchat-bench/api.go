package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jobchat/jobchat/internal/auth"
)

// participant is one side of a conversation and the token the bench signs
// for it.
type participant struct {
	ID    string `json:"id"`
	Name  string `json:"displayName"`
	token string
}

// conversation is one conversation under load.
type conversation struct {
	ID     string
	Client participant
	Worker participant
	// BaseSeq is its lastSeq when the run began: subscriptions start after
	// it, and every seq above it must reach every subscriber.
	BaseSeq int64
}

// gqlClient makes the bench's GraphQL calls over HTTP.
type gqlClient struct {
	http     *http.Client
	queryURL string
}

type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// do runs one operation for setup and checks (not the hot path, which
// builds its bodies by hand) and decodes data into out.
func (c *gqlClient) do(ctx context.Context, token, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.queryURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", c.queryURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("POST %s: %s: %.200s", c.queryURL, resp.Status, b)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("graphql: %s (%s)", r.Errors[0].Message, r.Errors[0].Extensions.Code)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", c.queryURL, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return fmt.Errorf("decode data: %w", err)
	}
	return nil
}

const createConversationQuery = `mutation($in: CreateConversationInput!) {
  createConversationForJob(input: $in) { id lastSeq client { id displayName } worker { id displayName } }
}`

type convData struct {
	ID      string      `json:"id"`
	LastSeq int64       `json:"lastSeq"`
	Client  participant `json:"client"`
	Worker  participant `json:"worker"`
}

// createConversations opens n conversations for jobs unique to this run, so
// that runs against the same database do not share conversations.
func (c *gqlClient) createConversations(ctx context.Context, svcToken, runTag string, n, workers int) ([]conversation, error) {
	convs := make([]conversation, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range workers {
		wg.Go(func() {
			for i := range next {
				if errs[w] != nil {
					continue // drain, so the producer never blocks
				}
				vars := map[string]any{"in": map[string]any{
					"jobId":    fmt.Sprintf("bench-%s-job-%d", runTag, i),
					"jobTitle": fmt.Sprintf("Bench job %d", i),
					"client":   map[string]any{"id": fmt.Sprintf("bench-%s-c%d", runTag, i), "displayName": fmt.Sprintf("Client %d", i)},
					"worker":   map[string]any{"id": fmt.Sprintf("bench-%s-w%d", runTag, i), "displayName": fmt.Sprintf("Worker %d", i)},
				}}
				var out struct {
					C convData `json:"createConversationForJob"`
				}
				if err := c.do(ctx, svcToken, createConversationQuery, vars, &out); err != nil {
					errs[w] = fmt.Errorf("create conversation %d: %w", i, err)
					continue
				}
				convs[i] = conversation{ID: out.C.ID, Client: out.C.Client, Worker: out.C.Worker, BaseSeq: out.C.LastSeq}
			}
		})
	}
	func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return convs, nil
}

// loadConversations looks up existing conversations by id.
func (c *gqlClient) loadConversations(ctx context.Context, svcToken string, ids []string) ([]conversation, error) {
	convs := make([]conversation, 0, len(ids))
	for _, id := range ids {
		var out struct {
			C *convData `json:"conversation"`
		}
		q := `query($id: ID!) { conversation(id: $id) { id lastSeq client { id displayName } worker { id displayName } } }`
		if err := c.do(ctx, svcToken, q, map[string]any{"id": id}, &out); err != nil {
			return nil, fmt.Errorf("load conversation %s: %w", id, err)
		}
		if out.C == nil {
			return nil, fmt.Errorf("load conversation %s: not found", id)
		}
		convs = append(convs, conversation{ID: out.C.ID, Client: out.C.Client, Worker: out.C.Worker, BaseSeq: out.C.LastSeq})
	}
	return convs, nil
}

// lastSeqs asks for every conversation's lastSeq, many per request through
// aliases: the authoritative count of what subscribers must have received,
// including sends whose answer the bench never saw.
func (c *gqlClient) lastSeqs(ctx context.Context, svcToken string, convs []conversation) ([]int64, error) {
	// Under the server's default JOBCHAT_MAX_ALIASES (30), and under its
	// complexity limit, which counts each conversation lookup.
	const batch = 25
	out := make([]int64, len(convs))
	for lo := 0; lo < len(convs); lo += batch {
		hi := min(lo+batch, len(convs))
		var q strings.Builder
		q.WriteString("query {")
		for i := lo; i < hi; i++ {
			fmt.Fprintf(&q, " c%d: conversation(id: %s) { lastSeq }", i, strconv.Quote(convs[i].ID))
		}
		q.WriteString(" }")
		var data map[string]*struct {
			LastSeq int64 `json:"lastSeq"`
		}
		if err := c.do(ctx, svcToken, q.String(), nil, &data); err != nil {
			return nil, fmt.Errorf("read lastSeq: %w", err)
		}
		for i := lo; i < hi; i++ {
			v := data["c"+strconv.Itoa(i)]
			if v == nil {
				return nil, fmt.Errorf("read lastSeq: conversation %s missing", convs[i].ID)
			}
			out[i] = v.LastSeq
		}
	}
	return out, nil
}

// participant returns the conversation's worker or its client.
func (c *conversation) participant(worker bool) *participant {
	if worker {
		return &c.Worker
	}
	return &c.Client
}

// signTokens gives both participants of every conversation a token.
func signTokens(secret []byte, convs []conversation, ttl time.Duration) error {
	for i := range convs {
		for _, p := range []*participant{&convs[i].Client, &convs[i].Worker} {
			t, err := auth.Issue(secret, auth.Caller{ID: p.ID, Name: p.Name}, ttl)
			if err != nil {
				return fmt.Errorf("sign token for %s: %w", p.ID, err)
			}
			p.token = t
		}
	}
	return nil
}

// sendMessageQuery selects only seq: the answer is what send latency
// measures, and the subscribers check the rest.
const sendMessageQuery = `mutation($in:SendMessageInput!){sendMessage(input:$in){seq}}`

// appendSendBody writes the JSON body of one sendMessage into b. ids and
// text are the bench's own (no characters needing escapes), so the body is
// built by appending rather than by encoding/json, per send.
func appendSendBody(b []byte, convID, text string, clientID []byte) []byte {
	b = append(b, `{"query":"`...)
	b = append(b, sendMessageQuery...)
	b = append(b, `","variables":{"in":{"conversationId":`...)
	b = strconv.AppendQuote(b, convID)
	b = append(b, `,"messageText":"`...)
	b = append(b, text...)
	b = append(b, `","clientMessageId":"`...)
	b = append(b, clientID...)
	b = append(b, `"}}}`...)
	return b
}

// sendResult classifies the answer to a sendMessage: its seq, or a short
// error class for the report ("RATE_LIMITED", "http 503").
func parseSendAnswer(status int, body []byte) (seq int64, errClass string) {
	if class := answerError(status, body); class != "" {
		return 0, class
	}
	seq, ok := jsonIntAfter(body, keySeq)
	if !ok {
		return 0, "answer without seq"
	}
	return seq, ""
}

const setTypingQuery = `mutation($c:ID!,$t:Boolean!){setTyping(conversationId:$c,typing:$t)}`

// answerError classifies a failed answer to a mutation: its first error's
// code (or message), or the HTTP status; "" when it succeeded.
func answerError(status int, body []byte) string {
	if i := bytes.Index(body, []byte(`"errors"`)); i >= 0 {
		if code := jsonStringAfter(body[i:], `"code":"`); code != "" {
			return code
		}
		if msg := jsonStringAfter(body[i:], `"message":"`); msg != "" {
			return "error: " + truncate(msg, 60)
		}
		return "graphql error"
	}
	if status != http.StatusOK {
		return "http " + strconv.Itoa(status)
	}
	return ""
}

// appendSetTypingBody writes the JSON body of one setTyping into b.
func appendSetTypingBody(b []byte, convID string, typing bool) []byte {
	b = append(b, `{"query":"`...)
	b = append(b, setTypingQuery...)
	b = append(b, `","variables":{"c":`...)
	b = strconv.AppendQuote(b, convID)
	b = append(b, `,"t":`...)
	b = strconv.AppendBool(b, typing)
	return append(b, `}}`...)
}

// parseSetTypingAnswer classifies the answer to a setTyping: "" when it is
// true, as the contract says it always is, else a short error class.
func parseSetTypingAnswer(status int, body []byte) string {
	if class := answerError(status, body); class != "" {
		return class
	}
	if !bytes.Contains(body, []byte(`"setTyping":true`)) {
		return "setTyping: answer not true"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
