package wsgql

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/jobchat/jobchat/internal/jsontext"
)

// inbound is any client message of either protocol. Fields stay raw so that
// their JSON types can be checked the way the protocols require.
type inbound struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// kind is what a client message asks for.
type kind uint8

const (
	kindInit      kind = iota + 1 // connection_init, both protocols
	kindPing                      // graphql-transport-ws
	kindPong                      // graphql-transport-ws
	kindSubscribe                 // subscribe (graphql-transport-ws), start (legacy)
	kindComplete                  // complete (graphql-transport-ws), stop (legacy)
	kindTerminate                 // connection_terminate, legacy
)

// message is one decoded client message of either protocol.
type message struct {
	kind kind
	// id is the operation's, for kindSubscribe and kindComplete.
	id string
	// init is connection_init's payload: nil when absent or null.
	init map[string]any
	// params is kindSubscribe's payload.
	params *graphql.RawParams
}

// maxIDBytes bounds operation ids. Clients use counters and UUIDs; an id
// is kept for as long as its operation runs and repeated in every frame of
// it, so a long one would multiply the memory a socket holds.
const maxIDBytes = 128

// refusal is why a message was refused. On graphql-transport-ws every
// refusal closes the socket with code and reason. On the legacy protocol
// the client is told in a connection_error (connErr) or an error frame
// for operation id, with reason as its message; the socket closes too only
// when code is not 0.
type refusal struct {
	code    int
	reason  string
	connErr bool
	id      string
}

// decodeTransportWS decodes one graphql-transport-ws message, refusing
// what the protocol does not allow with the code PROTOCOL.md gives for it.
// It depends on nothing but data: the socket's state is the caller's.
func decodeTransportWS(data []byte) (message, *refusal) {
	bad := func(reason string) (message, *refusal) {
		return message{}, &refusal{code: CloseBadRequest, reason: "Invalid message received" + reason}
	}
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		return bad("")
	}
	switch m.Type {
	case "connection_init":
		payload, ok := objectOrNull(m.Payload)
		if !ok {
			return bad(`: "connection_init" payload must be an object`)
		}
		return message{kind: kindInit, init: payload}, nil
	case "ping", "pong":
		if _, ok := objectOrNull(m.Payload); !ok {
			return bad(fmt.Sprintf(": %q payload must be an object", m.Type))
		}
		if m.Type == "ping" {
			return message{kind: kindPing}, nil
		}
		return message{kind: kindPong}, nil
	case "subscribe":
		id, ok := idOf(m.ID)
		if !ok {
			return bad(`: "subscribe" needs a non-empty string id of at most 128 bytes`)
		}
		params, err := decodeParams(m.Payload)
		if err != nil {
			return bad(": " + err.Error())
		}
		return message{kind: kindSubscribe, id: id, params: params}, nil
	case "complete":
		id, ok := idOf(m.ID)
		if !ok {
			return bad(`: "complete" needs a non-empty string id of at most 128 bytes`)
		}
		return message{kind: kindComplete, id: id}, nil
	case "":
		return bad(": missing type")
	default:
		return bad(fmt.Sprintf(": unexpected type %q", m.Type))
	}
}

// decodeLegacy decodes one subscriptions-transport-ws message as its
// PROTOCOL.md and reference server do: a message that does not parse gets
// connection_error, other mistakes an error, and the socket stays; but a
// connection_init whose payload is not an object closes it with 4400, as
// on graphql-transport-ws, rather than leave a client that sent
// credentials in a shape nobody reads believing it is authenticated.
func decodeLegacy(data []byte) (message, *refusal) {
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		return message{}, &refusal{connErr: true, reason: "invalid message: not a JSON object"}
	}
	id, hasID := idOf(m.ID)
	switch m.Type {
	case "connection_init":
		payload, ok := objectOrNull(m.Payload)
		if !ok {
			return message{}, &refusal{code: CloseBadRequest, connErr: true, reason: "connection_init payload must be an object"}
		}
		return message{kind: kindInit, init: payload}, nil
	case "start", "stop":
		if !hasID {
			return message{}, &refusal{reason: fmt.Sprintf("%q needs a non-empty string id of at most 128 bytes", m.Type)}
		}
		if m.Type == "stop" {
			return message{kind: kindComplete, id: id}, nil
		}
		params, err := decodeParams(m.Payload)
		if err != nil {
			return message{}, &refusal{id: id, reason: err.Error()}
		}
		return message{kind: kindSubscribe, id: id, params: params}, nil
	case "connection_terminate":
		return message{kind: kindTerminate}, nil
	default:
		return message{}, &refusal{id: id, reason: fmt.Sprintf("Invalid message type %q", m.Type)}
	}
}

// handle processes one graphql-transport-ws message. Anything the protocol
// does not allow closes the socket with the code PROTOCOL.md gives for it.
func (c *conn) handle(data []byte) {
	received := graphql.Now()
	m, bad := decodeTransportWS(data)
	if bad != nil {
		c.close(bad.code, bad.reason)
		return
	}
	switch m.kind {
	case kindInit:
		c.mu.Lock()
		state := c.state
		c.state = initRunning
		c.mu.Unlock()
		if state != initWaiting {
			c.close(CloseTooManyInitRequest, "Too many initialisation requests")
			return
		}
		if c.accept(m.init) {
			c.enqueue(frameAck)
		}
	case kindPing:
		c.enqueue(framePong)
	case kindPong:
	case kindSubscribe:
		c.mu.Lock()
		ready := c.state == initDone
		c.mu.Unlock()
		if !ready {
			c.close(CloseUnauthorized, "Unauthorized")
			return
		}
		if c.isActive(m.id) {
			c.close(CloseSubscriberExists, fmt.Sprintf("Subscriber for %s already exists", m.id))
			return
		}
		c.start(m.id, m.params, received)
	case kindComplete:
		c.stop(m.id)
	}
}

// handleLegacy processes one subscriptions-transport-ws message (see
// decodeLegacy for what it refuses and how).
func (c *conn) handleLegacy(data []byte) {
	received := graphql.Now()
	m, bad := decodeLegacy(data)
	if bad != nil {
		if bad.connErr {
			c.enqueue(legacyConnectionError(bad.reason))
		} else {
			c.enqueue(legacyMessageError(bad.id, bad.reason))
		}
		if bad.code != 0 {
			c.close(bad.code, "Invalid message received: "+bad.reason)
		}
		return
	}
	switch m.kind {
	case kindInit:
		c.mu.Lock()
		state := c.state
		if state == initWaiting {
			c.state = initRunning
		}
		c.mu.Unlock()
		switch state {
		case initDone:
			// Clients resend init after a hiccup; the socket is already
			// authenticated, so acknowledge again.
			c.enqueue(frameAck)
		case initWaiting:
			if c.accept(m.init) {
				c.enqueue(frameAck)
				c.enqueue(frameKA)
			}
		}
	case kindSubscribe:
		c.mu.Lock()
		ready := c.state == initDone
		c.mu.Unlock()
		if !ready {
			c.enqueue(legacyMessageError(m.id, "connection_init must come before start"))
			return
		}
		// subscriptions-transport-ws replaces an operation whose id is reused.
		c.stop(m.id)
		c.start(m.id, m.params, received)
	case kindComplete:
		// PROTOCOL.md: the server answers a stop with complete.
		if c.isActive(m.id) {
			c.stop(m.id)
			c.enqueue(frameComplete(m.id, true))
		}
	case kindTerminate:
		c.close(CloseNormal, "")
	}
}

// objectOrNull decodes an optional payload that must be an object. Numbers
// stay json.Number, which gqlgen's input coercion expects of variables.
func objectOrNull(raw json.RawMessage) (map[string]any, bool) {
	return decodeObjectOrNull(raw, func(raw []byte) (map[string]any, error) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var m map[string]any
		return m, dec.Decode(&m)
	})
}

// decodeObjectOrNull is the shape check objectOrNull and variablesOrNull
// share, around their decoders.
func decodeObjectOrNull(raw json.RawMessage, decode func([]byte) (map[string]any, error)) (map[string]any, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, true
	}
	if raw[0] != '{' {
		return nil, false
	}
	m, err := decode(raw)
	if err != nil {
		return nil, false
	}
	return m, true
}

// idOf decodes an operation id: a non-empty string of at most maxIDBytes.
func idOf(raw json.RawMessage) (string, bool) {
	var id string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &id) != nil || id == "" || len(id) > maxIDBytes {
		return "", false
	}
	return id, true
}

// decodeParams checks a subscribe/start payload the way graphql-ws's
// reference server does: an object whose query is a string, variables and
// extensions objects or null, operationName a string or null.
func decodeParams(raw json.RawMessage) (*graphql.RawParams, error) {
	var p struct {
		Query         *string         `json:"query"`
		OperationName *string         `json:"operationName"`
		Variables     json.RawMessage `json:"variables"`
		Extensions    json.RawMessage `json:"extensions"`
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("payload must be an object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	ext, ok := objectOrNull(p.Extensions)
	if !ok {
		return nil, fmt.Errorf("payload.extensions must be an object")
	}
	params := &graphql.RawParams{Extensions: ext}
	switch {
	case p.Query != nil:
		params.Query = *p.Query
	case !hasPersistedQuery(ext):
		return nil, fmt.Errorf("payload.query must be a string")
	}
	// Without a query, the operation is an Automatic Persisted Query sent
	// by hash alone, as over HTTP: the executor's persisted-operation
	// extension finds its text or answers PersistedQueryNotFound.
	if p.OperationName != nil {
		params.OperationName = *p.OperationName
	}
	vars, ok := variablesOrNull(p.Variables)
	if !ok {
		return nil, fmt.Errorf("payload.variables must be an object")
	}
	params.Variables = vars
	return params, nil
}

// hasPersistedQuery reports an extensions.persistedQuery object (a null one
// is no extension, as over HTTP).
func hasPersistedQuery(ext map[string]any) bool {
	_, ok := ext["persistedQuery"].(map[string]any)
	return ok
}

// variablesOrNull is objectOrNull for variables, decoded as the HTTP
// transports decode them (jsontext.DecodeObject): a string that is not
// Unicode text (a lone surrogate escape such as \ud800) stays recognisable,
// so that the guard refuses it naming the variable, instead of
// encoding/json turning it into U+FFFD.
func variablesOrNull(raw json.RawMessage) (map[string]any, bool) {
	return decodeObjectOrNull(raw, jsontext.DecodeObject)
}

var (
	frameAck  = []byte(`{"type":"connection_ack"}`)
	framePong = []byte(`{"type":"pong"}`)
	frameKA   = []byte(`{"type":"ka"}`)
)

func quote(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// framePrefix is what precedes a result's JSON in a next (or legacy data)
// frame for operation id; a closing brace follows the result.
func framePrefix(id string, legacy bool) []byte {
	typ := "next"
	if legacy {
		typ = "data"
	}
	b := append([]byte(`{"id":`), quote(id)...)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	return append(b, `","payload":`...)
}

func frameComplete(id string, _ bool) []byte {
	b := append([]byte(`{"id":`), quote(id)...)
	return append(b, `,"type":"complete"}`...)
}

// frameError carries GraphQL errors that end an operation before it ran;
// both protocols call it "error" and accept an array payload.
func frameError(id string, errs []byte) []byte {
	b := append([]byte(`{"id":`), quote(id)...)
	b = append(b, `,"type":"error","payload":`...)
	b = append(b, errs...)
	return append(b, '}')
}

func legacyMessageError(id, msg string) []byte {
	v := map[string]any{"type": "error", "payload": map[string]string{"message": msg}}
	if id != "" {
		v["id"] = id
	}
	b, _ := json.Marshal(v)
	return b
}

func legacyConnectionError(msg string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "connection_error", "payload": map[string]string{"message": msg}})
	return b
}
