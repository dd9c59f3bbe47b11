package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/config"
)

const testSecret = "test-secret-0123456789-0123456789-abcdef"

// env is a real jobchat server on a real socket over a throwaway database.
type env struct {
	url string
	app *app
}

// forEachDialect runs fn against a fresh server on every database this run
// covers: SQLite always, PostgreSQL when configured (and always in CI).
func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			fn(t, newEnv(t, dialect, nil))
		})
	}
}

// newEnv starts a server on a fresh database; extra overrides environment
// variables.
func newEnv(tb testing.TB, dialect string, extra map[string]string) *env {
	tb.Helper()
	return newEnvOnDB(tb, dbtest.Config(tb, dialect), extra)
}

// newEnvOnDB starts a server over a given database, so that several
// instances can share one, as they do behind a load balancer.
func newEnvOnDB(tb testing.TB, dbc db.Config, extra map[string]string) *env {
	tb.Helper()
	e, _ := startApp(tb, dbc, extra, zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel))
	return e
}

// startApp starts a server over dbc, logging to log, with the suite's
// settings and extra's overrides; it returns the server and a stop
// function (also run at cleanup), so that a test can restart jobchat.
func startApp(tb testing.TB, dbc db.Config, extra map[string]string, log zerolog.Logger) (*env, func()) {
	tb.Helper()
	vars := map[string]string{
		"JOBCHAT_DATA_DIR":     dbc.DataDir,
		"JOBCHAT_DATABASE_URL": dbc.URL,
		"JOBCHAT_JWT_SECRET":   testSecret,
		"JOBCHAT_LOG_LEVEL":    "warn",
		// The suite sends in bursts far beyond a person's pace; the limit
		// has its own test.
		"JOBCHAT_SEND_RATE": "0",
	}
	if vars["JOBCHAT_DATA_DIR"] == "" {
		vars["JOBCHAT_DATA_DIR"] = tb.TempDir()
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, _, err := config.Load("test", nil, func(k string) string { return vars[k] }, testWriter{tb}, nil)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	a, err := newApp(context.Background(), cfg, log)
	if err != nil {
		tb.Fatalf("start app: %v", err)
	}
	srv := httptest.NewServer(a.handler)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.CloseClientConnections()
			srv.Close()
			a.close()
		})
	}
	tb.Cleanup(stop)
	return &env{url: srv.URL, app: a}, stop
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func userToken(tb testing.TB, sub, name string) string {
	tb.Helper()
	tok, err := auth.Issue([]byte(testSecret), auth.Caller{ID: sub, Name: name}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func serviceToken(tb testing.TB) string {
	tb.Helper()
	tok, err := auth.Issue([]byte(testSecret), auth.Caller{ID: "job-service", Service: true}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	Status int             `json:"-"`
}

// code is the first error's extensions.code, or "" without errors.
func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["code"].(string)
	return s
}

// ok fails the test on any GraphQL error and decodes data into v.
func (r gqlResponse) ok(tb testing.TB, v any) {
	tb.Helper()
	if len(r.Errors) > 0 {
		tb.Fatalf("unexpected GraphQL errors: %+v", r.Errors)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			tb.Fatalf("decode data %s: %v", r.Data, err)
		}
	}
}

// fails checks that the response failed with code and a message naming want.
func (r gqlResponse) fails(tb testing.TB, code, want string) {
	tb.Helper()
	if len(r.Errors) == 0 {
		tb.Fatalf("want %s error, got data %s", code, r.Data)
	}
	if r.code() != code {
		tb.Fatalf("want code %s, got %q (%+v)", code, r.code(), r.Errors)
	}
	if !strings.Contains(r.Errors[0].Message, want) {
		tb.Fatalf("want message containing %q, got %q", want, r.Errors[0].Message)
	}
}

// do posts one GraphQL operation over HTTP as token's caller ("" for none).
func (e *env) do(tb testing.TB, token, query string, vars map[string]any) gqlResponse {
	tb.Helper()
	authorization := ""
	if token != "" {
		authorization = "Bearer " + token
	}
	return e.doHeader(tb, authorization, query, vars)
}

// doHeader posts one GraphQL operation with a raw Authorization header.
func (e *env) doHeader(tb testing.TB, authorization, query string, vars map[string]any) gqlResponse {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return e.postBody(tb, authorization, body)
}

// postBody posts a raw JSON body to /query, for bodies encoding/json would
// not write as well as for those it did.
func (e *env) postBody(tb testing.TB, authorization string, body []byte) gqlResponse {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/query", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST /query: %v", err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("decode response (status %d): %v", resp.StatusCode, err)
	}
	out.Status = resp.StatusCode
	return out
}

// wsClient speaks graphql-transport-ws (or the legacy graphql-ws) over a
// real socket.
type wsClient struct {
	tb    testing.TB
	conn  *websocket.Conn
	proto string
	ids   atomic.Int64
	// held keeps messages of other operations that nextFor read past.
	held []wsMessage
}

// nextFor returns the next message of operation id, keeping those of
// other operations on the socket for their own nextFor.
func (c *wsClient) nextFor(id string) wsMessage {
	c.tb.Helper()
	for i, m := range c.held {
		if m.ID == id {
			c.held = append(c.held[:i], c.held[i+1:]...)
			return m
		}
	}
	for {
		m := c.next()
		if m.ID == id {
			return m
		}
		c.held = append(c.held, m)
	}
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (e *env) dial(tb testing.TB, proto string, initPayload map[string]any) *wsClient {
	tb.Helper()
	c := &wsClient{tb: tb, conn: e.dialRaw(tb, proto, nil), proto: proto}
	c.send(wsMessage{Type: "connection_init", Payload: mustJSON(tb, initPayload)})
	if m := c.next(); m.Type != "connection_ack" {
		tb.Fatalf("want connection_ack, got %+v", m)
	}
	return c
}

// dialRaw opens a websocket to /query offering proto, with header on the
// upgrade request, and sends nothing.
func (e *env) dialRaw(tb testing.TB, proto string, header http.Header) *websocket.Conn {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/query", header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial websocket (status %d): %v", status, err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

func mustJSON(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func (c *wsClient) send(m wsMessage) {
	c.tb.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.tb.Fatalf("websocket write: %v", err)
	}
}

// next reads the next message other than keep-alives, waiting at most 10s.
func (c *wsClient) next() wsMessage {
	c.tb.Helper()
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m wsMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			c.tb.Fatalf("websocket read: %v", err)
		}
		switch m.Type {
		case "ka", "ping", "pong":
			if m.Type == "ping" {
				c.send(wsMessage{Type: "pong"})
			}
			continue
		}
		return m
	}
}

// subscribe starts an operation and returns its id.
func (c *wsClient) subscribe(query string, vars map[string]any) string {
	c.tb.Helper()
	id := strings.Repeat("s", 1) + string(rune('0'+c.ids.Add(1)%10)) + time.Now().Format("150405.000000")
	typ := "subscribe"
	if c.proto == "graphql-ws" {
		typ = "start"
	}
	c.send(wsMessage{ID: id, Type: typ, Payload: mustJSON(c.tb, map[string]any{"query": query, "variables": vars})})
	return id
}

// profile and conversation are what the tests read of those types.
type profile struct {
	ID          string  `json:"id"`
	DisplayName string  `json:"displayName"`
	AvatarURL   *string `json:"avatarUrl"`
}

type conversation struct {
	ID  string `json:"id"`
	Job struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"job"`
	Client           profile  `json:"client"`
	Worker           profile  `json:"worker"`
	MyRole           *string  `json:"myRole"`
	OtherParticipant *profile `json:"otherParticipant"`
	LastSeq          int      `json:"lastSeq"`
	UnreadCount      int      `json:"unreadCount"`
	MyLastReadSeq    *int     `json:"myLastReadSeq"`
}

// message is the Message fields the tests read.
type message struct {
	ID              string  `json:"id"`
	ConversationID  string  `json:"conversationId"`
	Seq             int     `json:"seq"`
	SenderID        *string `json:"senderId"`
	SenderName      *string `json:"senderName"`
	MessageText     string  `json:"messageText"`
	MessageType     string  `json:"messageType"`
	ClientMessageID *string `json:"clientMessageId"`
	IsRead          bool    `json:"isRead"`
	Timestamp       string  `json:"timestamp"`
}

const messageFields = `id conversationId seq senderId senderName messageText messageType clientMessageId isRead timestamp`

// nextMessage reads the next messageAdded event of operation id.
func (c *wsClient) nextMessage(id string) message {
	c.tb.Helper()
	m := c.next()
	want := "next"
	if c.proto == "graphql-ws" {
		want = "data"
	}
	if m.Type != want || m.ID != id {
		c.tb.Fatalf("want %s for %s, got %+v (%s)", want, id, m, m.Payload)
	}
	var p struct {
		Data struct {
			MessageAdded message `json:"messageAdded"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		c.tb.Fatalf("decode next payload %s: %v", m.Payload, err)
	}
	if len(p.Errors) > 0 {
		c.tb.Fatalf("subscription errors: %+v", p.Errors)
	}
	return p.Data.MessageAdded
}
