package legacy

import (
	"encoding/json"
	"strings"
	"time"
	"unicode"

	"github.com/jobchat/jobchat/internal/jsontext"
)

// The frames are the Django consumer's, field for field (see the reference
// document of the old system): the old frontend reads them unchanged. They
// are types of their own so that nothing jobchat stores or broadcasts can
// change them by accident.

// Frame types sent by the server. The old frontend ignores types it does
// not know, so message_updated and error cost it nothing.
const (
	frameMessage = "message"
	frameUpdated = "message_updated"
	frameError   = "error"
)

// typeSystem is the one message type the frames treat specially.
const typeSystem = "SYSTEM"

type messageFrame struct {
	Type    string      `json:"type"`
	Message messageBody `json:"message"`
}

type messageBody struct {
	ID             string  `json:"id"`
	ConversationID string  `json:"conversation_id"`
	SenderID       *string `json:"sender_id"`
	SenderName     *string `json:"sender_name"`
	MessageText    string  `json:"message_text"`
	MessageType    string  `json:"message_type"`
	Timestamp      string  `json:"timestamp"`
	IsRead         bool    `json:"is_read"`
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// encodeEvent makes the frame of ev.
func encodeEvent(ev Event) []byte {
	m := ev.Message
	f := messageFrame{Type: frameMessage, Message: messageBody{
		ID:             m.ID,
		ConversationID: m.ConversationID,
		SenderID:       m.SenderID,
		SenderName:     m.SenderName,
		MessageText:    m.Text,
		MessageType:    m.Type,
		// As GraphQL's Time scalar writes it, so that both transports
		// give the frontend the same string for one message.
		Timestamp: m.Timestamp.UTC().Format(time.RFC3339Nano),
		IsRead:    m.IsRead,
	}}
	if ev.Updated {
		f.Type = frameUpdated
	}
	if m.Type == typeSystem {
		f.Message.SenderID = nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		// Strings, pointers to strings and a bool cannot fail to encode.
		panic("legacy: encode frame: " + err.Error())
	}
	return b
}

func encodeError(code, msg string) []byte {
	b, err := json.Marshal(errorFrame{Type: frameError, Code: code, Message: msg})
	if err != nil {
		panic("legacy: encode error frame: " + err.Error())
	}
	return b
}

// clientFrame is what the old frontend sends: {"message": "...", "type": "TEXT"}.
type clientFrame struct {
	Message jsonText `json:"message"`
	Type    string   `json:"type"`
}

// jsonText is a JSON string that remembers why it was not Unicode text:
// encoding/json turns a lone surrogate escape (\ud800) into U+FFFD without
// a word, which would store a character the client never sent.
type jsonText struct {
	s   string
	bad string // jsontext.CheckString's reason; "" for text
}

func (t *jsonText) UnmarshalJSON(lit []byte) error {
	if err := json.Unmarshal(lit, &t.s); err != nil {
		return err
	}
	t.bad = jsontext.CheckString(lit)
	return nil
}

// decodeSend reads a client frame. ok is false for what the old consumer
// ignored: anything that is not a JSON object with a string message (and a
// string type, if any), and blank messages. The type defaults to TEXT, as
// in the old consumer; it is upper-cased, the old model's choices being
// upper-case names, and otherwise left to the send path to judge. notText,
// if not "", says why the message is not Unicode text, which the send path
// never sees (it could not tell U+FFFD sent from U+FFFD made up).
func decodeSend(data []byte) (text, msgType, notText string, ok bool) {
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return "", "", "", false
	}
	if f.Message.bad == "" && strings.TrimFunc(f.Message.s, unicode.IsSpace) == "" {
		return "", "", "", false
	}
	msgType = strings.ToUpper(strings.TrimSpace(f.Type))
	if msgType == "" {
		msgType = "TEXT"
	}
	return f.Message.s, msgType, f.Message.bad, true
}
