package wsgql

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
)

// inbound is any client message of either protocol. Fields stay raw so that
// their JSON types can be checked the way the protocols require.
type inbound struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// handle processes one graphql-transport-ws message. Anything the protocol
// does not allow closes the socket with the code PROTOCOL.md gives for it.
func (c *conn) handle(data []byte) {
	received := graphql.Now()
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		c.close(CloseBadRequest, "Invalid message received")
		return
	}
	switch m.Type {
	case "connection_init":
		payload, ok := objectOrNull(m.Payload)
		if !ok {
			c.close(CloseBadRequest, `Invalid message received: "connection_init" payload must be an object`)
			return
		}
		c.mu.Lock()
		state := c.state
		c.state = initRunning
		c.mu.Unlock()
		if state != initWaiting {
			c.close(CloseTooManyInitRequest, "Too many initialisation requests")
			return
		}
		if c.accept(payload) {
			c.enqueue(frameAck)
		}
	case "ping":
		if _, ok := objectOrNull(m.Payload); !ok {
			c.close(CloseBadRequest, `Invalid message received: "ping" payload must be an object`)
			return
		}
		c.enqueue(framePong)
	case "pong":
		if _, ok := objectOrNull(m.Payload); !ok {
			c.close(CloseBadRequest, `Invalid message received: "pong" payload must be an object`)
		}
	case "subscribe":
		id, ok := idOf(m.ID)
		if !ok {
			c.close(CloseBadRequest, `Invalid message received: "subscribe" needs a non-empty string id`)
			return
		}
		params, err := decodeParams(m.Payload)
		if err != nil {
			c.close(CloseBadRequest, "Invalid message received: "+err.Error())
			return
		}
		c.mu.Lock()
		ready := c.state == initDone
		c.mu.Unlock()
		if !ready {
			c.close(CloseUnauthorized, "Unauthorized")
			return
		}
		if c.isActive(id) {
			c.close(CloseSubscriberExists, fmt.Sprintf("Subscriber for %s already exists", id))
			return
		}
		c.start(id, params, received)
	case "complete":
		id, ok := idOf(m.ID)
		if !ok {
			c.close(CloseBadRequest, `Invalid message received: "complete" needs a non-empty string id`)
			return
		}
		c.stop(id)
	case "":
		c.close(CloseBadRequest, "Invalid message received: missing type")
	default:
		c.close(CloseBadRequest, fmt.Sprintf("Invalid message received: unexpected type %q", m.Type))
	}
}

// handleLegacy processes one subscriptions-transport-ws message, as its
// PROTOCOL.md and reference server do: mistakes get connection_error (a
// message that does not parse) or error (anything else), and the socket
// stays.
func (c *conn) handleLegacy(data []byte) {
	received := graphql.Now()
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		// PROTOCOL.md: a message that does not parse gets connection_error,
		// and the socket stays.
		c.enqueue(legacyConnectionError("invalid message: not a JSON object"))
		return
	}
	id, hasID := idOf(m.ID)
	switch m.Type {
	case "connection_init":
		payload, ok := objectOrNull(m.Payload)
		if !ok {
			c.enqueue(legacyConnectionError("connection_init payload must be an object"))
			return
		}
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
			if c.accept(payload) {
				c.enqueue(frameAck)
				c.enqueue(frameKA)
			}
		}
	case "start":
		if !hasID {
			c.enqueue(legacyMessageError("", `"start" needs a non-empty string id`))
			return
		}
		c.mu.Lock()
		ready := c.state == initDone
		c.mu.Unlock()
		if !ready {
			c.enqueue(legacyMessageError(id, "connection_init must come before start"))
			return
		}
		params, err := decodeParams(m.Payload)
		if err != nil {
			c.enqueue(legacyMessageError(id, err.Error()))
			return
		}
		// subscriptions-transport-ws replaces an operation whose id is reused.
		c.stop(id)
		c.start(id, params, received)
	case "stop":
		if !hasID {
			c.enqueue(legacyMessageError("", `"stop" needs a non-empty string id`))
			return
		}
		// PROTOCOL.md: the server answers a stop with complete.
		if c.isActive(id) {
			c.stop(id)
			c.enqueue(frameComplete(id, true))
		}
	case "connection_terminate":
		c.close(CloseNormal, "")
	default:
		c.enqueue(legacyMessageError(id, fmt.Sprintf("Invalid message type %q", m.Type)))
	}
}

// objectOrNull decodes an optional payload that must be an object. Numbers
// stay json.Number, which gqlgen's input coercion expects of variables.
func objectOrNull(raw json.RawMessage) (map[string]any, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, true
	}
	if raw[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

func idOf(raw json.RawMessage) (string, bool) {
	var id string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &id) != nil || id == "" {
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
	if p.Query == nil {
		return nil, fmt.Errorf("payload.query must be a string")
	}
	params := &graphql.RawParams{Query: *p.Query}
	if p.OperationName != nil {
		params.OperationName = *p.OperationName
	}
	vars, ok := objectOrNull(p.Variables)
	if !ok {
		return nil, fmt.Errorf("payload.variables must be an object")
	}
	params.Variables = vars
	ext, ok := objectOrNull(p.Extensions)
	if !ok {
		return nil, fmt.Errorf("payload.extensions must be an object")
	}
	params.Extensions = ext
	return params, nil
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
