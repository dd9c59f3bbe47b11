package wsgql

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// The protocol rules are tested through the whole handler in
// internal/server; this file holds what only the package's insides show.

// TestClosedSocketStopsItsTimers: a socket authenticated with a long-lived
// token must stop its expiry timer when it closes, or the timer would keep
// the closed socket in memory until the token expired.
func TestClosedSocketStopsItsTimers(t *testing.T) {
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: "type Query { hello: String }"})
	exec := executor.New(&graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return schema },
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			return graphql.OneShot(&graphql.Response{Data: []byte(`{"hello":"world"}`)})
		},
	})
	tr := New(Config{Init: func(ctx context.Context, _ map[string]any) (context.Context, time.Time, error) {
		return ctx, time.Now().Add(24 * time.Hour), nil
	}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tr.Do(w, r, exec) }))
	defer srv.Close()

	ws, _, err := (&websocket.Dialer{Subprotocols: []string{ProtocolTransportWS}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteJSON(map[string]string{"type": "connection_init"}); err != nil {
		t.Fatal(err)
	}
	var ack struct{ Type string }
	if err := ws.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("ack: %+v %v", ack, err)
	}
	var c *conn
	for _, s := range tr.sockets.Conns() {
		c = s.Protocol().(*conn)
	}
	if c == nil {
		t.Fatal("no socket registered")
	}
	_ = ws.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if len(tr.sockets.Conns()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socket still registered after the client closed it")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiry == nil {
		t.Fatal("no expiry timer was set")
	}
	if c.expiry.Stop() {
		t.Error("the expiry timer was still running after the socket closed")
	}
	// The keep-alive timer is wsconn's: TestEndStopsKeepAlive there.
}

// TestUpgradeAfterShutdownGoesAway: a socket upgraded once Shutdown has
// run, which Shutdown's sweep could not see, is closed with 1001 as the
// others were, rather than left open past the server's shutdown.
func TestUpgradeAfterShutdownGoesAway(t *testing.T) {
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: "type Query { hello: String }"})
	exec := executor.New(&graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return schema },
	})
	tr := New(Config{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tr.Do(w, r, exec) }))
	defer srv.Close()
	tr.Shutdown()

	ws, _, err := (&websocket.Dialer{Subprotocols: []string{ProtocolTransportWS}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != CloseGoingAway {
		t.Fatalf("read: %v, want close 1001", err)
	}
}
