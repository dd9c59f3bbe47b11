package notify

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jobchat/jobchat/db"
)

// The body of a notice is a wire format of its own, in the Standard
// Webhooks shape ({type, timestamp, data}); its type names its version: a
// change that breaks a receiver gets a new type.

// EventUndelivered is the type of a notice of undelivered messages.
const EventUndelivered = "message.undelivered"

// Event is the body of every notice.
type Event struct {
	Type string `json:"type"`
	// Timestamp is when the notice was made: its first attempt.
	Timestamp time.Time   `json:"timestamp"`
	Data      Undelivered `json:"data"`
}

// Undelivered is the data of a message.undelivered notice: what one
// recipient has not received of one conversation.
type Undelivered struct {
	RecipientID    string `json:"recipientId"`
	ConversationID string `json:"conversationId"`
	JobID          string `json:"jobId"`
	JobTitle       string `json:"jobTitle"`
	// Count is how many messages the recipient has not received.
	Count int64 `json:"count"`
	// LatestSeq and LatestMessageID are the newest of them.
	LatestSeq       int64  `json:"latestSeq"`
	LatestMessageID string `json:"latestMessageId"`
	// SenderName is the newest message's sender's; null for a SYSTEM
	// message.
	SenderName *string `json:"senderName"`
	// Preview is the start of the newest message as the recipient reads
	// it (contact details masked under the MASK policy).
	Preview string `json:"preview"`
}

// previewRunes is the longest preview, in characters, the ellipsis
// included.
const previewRunes = 140

func encodeUndelivered(n *db.Notice, u *db.Undelivered, at time.Time) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a preview's "<" stays readable
	err := enc.Encode(Event{
		Type:      EventUndelivered,
		Timestamp: at.UTC().Truncate(time.Millisecond),
		Data: Undelivered{
			RecipientID:     n.RecipientID,
			ConversationID:  n.ConversationID,
			JobID:           u.JobID,
			JobTitle:        u.JobTitle,
			Count:           u.Count,
			LatestSeq:       u.Latest.Seq,
			LatestMessageID: u.Latest.ID,
			SenderName:      u.Latest.SenderName,
			Preview:         preview(u.Latest),
		},
	})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// preview is what a notification may show of m: its text as the
// recipient reads it (message_text, never original_text: a masked
// message's details stay hidden), on one line, at most previewRunes
// characters; a photo, file or location without text says what it is.
func preview(m *db.Message) string {
	text := strings.Join(strings.Fields(m.MessageText), " ")
	if text == "" {
		switch m.MessageType {
		case db.MessageImage:
			text = "Photo"
		case db.MessageFile:
			text = "File"
			if m.AttachmentFileName != nil && *m.AttachmentFileName != "" {
				text = "File: " + *m.AttachmentFileName
			}
		case db.MessageLocation:
			text = "Location"
			if m.LocationLabel != nil && *m.LocationLabel != "" {
				text = "Location: " + *m.LocationLabel
			}
		}
	}
	if utf8.RuneCountInString(text) <= previewRunes {
		return text
	}
	r := []rune(text)
	return strings.TrimRight(string(r[:previewRunes-1]), " ") + "…"
}
