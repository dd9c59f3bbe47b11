package resolvers

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jobchat/jobchat/db"
)

// The wire format between instances. Each payload is a JSON object with a
// version "v". Version 1's message keeps the field names of the unversioned
// payload it replaces (db.Message's old JSON tags plus "sender"), so that
// during a rolling deploy an instance of either version decodes what the
// other publishes: new fields are added, never renamed, and a change that
// old instances could not read takes a new version, which they drop (their
// subscribers then catch up from the database at the next message).
const wireVersion = 1

// wireMessage is a message on the bus, with the sender's profile as the
// publisher saw it so that no receiving instance looks it up per
// subscriber. Status, isRead and reactions are not carried: a message is
// broadcast as committed, when it has none of them yet.
type wireMessage struct {
	V               int          `json:"v"`
	ID              string       `json:"id"`
	ConversationID  string       `json:"conversationId"`
	Seq             int64        `json:"seq"`
	SenderID        *string      `json:"senderId,omitempty"`
	SenderName      *string      `json:"senderName,omitempty"`
	MessageText     string       `json:"messageText"`
	MessageType     string       `json:"messageType"`
	Lat             *float64     `json:"lat,omitempty"`
	Lng             *float64     `json:"lng,omitempty"`
	LocLabel        *string      `json:"locLabel,omitempty"`
	AttURL          *string      `json:"attUrl,omitempty"`
	AttName         *string      `json:"attName,omitempty"`
	AttMime         *string      `json:"attMime,omitempty"`
	AttSize         *int64       `json:"attSize,omitempty"`
	ClientMessageID *string      `json:"clientMessageId,omitempty"`
	JobEvent        *string      `json:"jobEvent,omitempty"`
	EditedAt        *time.Time   `json:"editedAt,omitempty"`
	DeletedAt       *time.Time   `json:"deletedAt,omitempty"`
	CreatedAt       time.Time    `json:"createdAt"`
	Sender          *wireProfile `json:"sender,omitempty"`
	// OriginalText is the text as written of a masked message, whose
	// messageText is the recipient's; receivers choose per viewer. An
	// instance that predates it shows every viewer the masked text.
	OriginalText *string  `json:"originalText,omitempty"`
	Flags        []string `json:"flags,omitempty"`
	// An uploaded attachment: its id, the file store's keys (receivers
	// sign the URLs for their own subscribers) and an image's pixels. An
	// instance that predates them shows such a message's attachment as
	// null.
	AttID       *string `json:"attId,omitempty"`
	AttKey      *string `json:"attKey,omitempty"`
	AttThumbKey *string `json:"attThumbKey,omitempty"`
	AttWidth    *int    `json:"attWidth,omitempty"`
	AttHeight   *int    `json:"attHeight,omitempty"`
}

type wireProfile struct {
	ID          string  `json:"id"`
	DisplayName string  `json:"displayName"`
	AvatarURL   *string `json:"avatarUrl,omitempty"`
}

func toWireProfile(p *db.Profile) *wireProfile {
	if p == nil {
		return nil
	}
	return &wireProfile{ID: p.ID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
}

func (p *wireProfile) profile() *db.Profile {
	if p == nil {
		return nil
	}
	return &db.Profile{ID: p.ID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
}

func toWireMessage(m *db.Message, sender *db.Profile) *wireMessage {
	w := &wireMessage{
		V: wireVersion, ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq,
		SenderID: m.SenderID, SenderName: m.SenderName, MessageText: m.MessageText,
		MessageType: string(m.MessageType),
		Lat:         m.LocationLatitude, Lng: m.LocationLongitude, LocLabel: m.LocationLabel,
		AttURL: m.AttachmentURL, AttName: m.AttachmentFileName, AttMime: m.AttachmentMimeType,
		AttSize: m.AttachmentSizeBytes, ClientMessageID: m.ClientMessageID,
		EditedAt: m.EditedAt, DeletedAt: m.DeletedAt, CreatedAt: m.CreatedAt,
		Sender: toWireProfile(sender),
	}
	if m.JobEvent != nil {
		e := string(*m.JobEvent)
		w.JobEvent = &e
	}
	w.OriginalText = m.OriginalText
	for _, f := range m.Flags {
		w.Flags = append(w.Flags, string(f))
	}
	w.AttID, w.AttKey, w.AttThumbKey = m.AttachmentID, m.AttachmentKey, m.AttachmentThumbKey
	w.AttWidth, w.AttHeight = m.AttachmentWidth, m.AttachmentHeight
	return w
}

// message rebuilds the stored row. The idempotency key stays behind: it is
// the job-service's, and no field shows it.
func (w *wireMessage) message() *db.Message {
	m := &db.Message{
		ID: w.ID, ConversationID: w.ConversationID, Seq: w.Seq,
		SenderID: w.SenderID, SenderName: w.SenderName, MessageText: w.MessageText,
		MessageType:      db.MessageType(w.MessageType),
		LocationLatitude: w.Lat, LocationLongitude: w.Lng, LocationLabel: w.LocLabel,
		AttachmentURL: w.AttURL, AttachmentFileName: w.AttName, AttachmentMimeType: w.AttMime,
		AttachmentSizeBytes: w.AttSize, ClientMessageID: w.ClientMessageID,
		EditedAt: w.EditedAt, DeletedAt: w.DeletedAt, CreatedAt: w.CreatedAt,
	}
	if w.JobEvent != nil {
		e := db.JobEvent(*w.JobEvent)
		m.JobEvent = &e
	}
	m.OriginalText = w.OriginalText
	for _, f := range w.Flags {
		m.Flags = append(m.Flags, db.MessageFlag(f))
	}
	m.AttachmentID, m.AttachmentKey, m.AttachmentThumbKey = w.AttID, w.AttKey, w.AttThumbKey
	m.AttachmentWidth, m.AttachmentHeight = w.AttWidth, w.AttHeight
	return m
}

// decodeWireMessage reads a message payload. A payload with no "v" is the
// unversioned format of the instances before it, which version 1 extends.
func decodeWireMessage(payload []byte) (*wireMessage, error) {
	var w wireMessage
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("decode message payload: %w", err)
	}
	if w.V > wireVersion {
		return nil, fmt.Errorf("decode message payload: version %d is newer than %d", w.V, wireVersion)
	}
	if w.ID == "" || w.ConversationID == "" || w.Seq <= 0 {
		return nil, fmt.Errorf("decode message payload: no id, conversation or seq")
	}
	return &w, nil
}

// wireActivity is a conversationActivity event on the bus. It carries all
// that any viewer's encoding reads (the message's reactions with who
// reacted, so that reactedByMe is computed per viewer on the receiving
// side), so that delivering it costs no query.
type wireActivity struct {
	V              int            `json:"v"`
	Kind           string         `json:"kind"`
	ConversationID string         `json:"conversationId"`
	ActorID        string         `json:"actorId,omitempty"`
	Actor          *wireProfile   `json:"actor,omitempty"`
	UpToSeq        *int64         `json:"upToSeq,omitempty"`
	Message        *wireMessage   `json:"message,omitempty"`
	Reactions      []wireReaction `json:"reactions,omitempty"`
	// Read and Delivered are the message's state as of the event.
	Read      bool      `json:"read,omitempty"`
	Delivered bool      `json:"delivered,omitempty"`
	At        time.Time `json:"at"`
}

type wireReaction struct {
	ProfileID string    `json:"p"`
	Emoji     string    `json:"e"`
	At        time.Time `json:"t"`
}

func decodeWireActivity(payload []byte) (*wireActivity, error) {
	var w wireActivity
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("decode activity payload: %w", err)
	}
	if w.V != wireVersion || w.Kind == "" || w.ConversationID == "" {
		return nil, fmt.Errorf("decode activity payload: version %d, kind %q", w.V, w.Kind)
	}
	return &w, nil
}

// wireInbox tells the instances serving a user's inbox that one of their
// conversations changed. It carries no state: the receiving instance, if
// it has inbox subscribers for that user, loads the conversation as the
// user sees it, once for all of them, so that sends pay nothing for the
// inboxes nobody watches.
type wireInbox struct {
	V              int       `json:"v"`
	Kind           string    `json:"kind"`
	ConversationID string    `json:"conversationId"`
	At             time.Time `json:"at"`
}

func decodeWireInbox(payload []byte) (*wireInbox, error) {
	var w wireInbox
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("decode inbox payload: %w", err)
	}
	if w.V != wireVersion || w.Kind == "" || w.ConversationID == "" {
		return nil, fmt.Errorf("decode inbox payload: version %d, kind %q", w.V, w.Kind)
	}
	return &w, nil
}

// Topics on the broadcast hub. Messages keep the bare conversation id, the
// topic of earlier versions.
func messageTopic(conversationID string) string  { return conversationID }
func activityTopic(conversationID string) string { return "a:" + conversationID }
func inboxTopic(profileID string) string         { return "i:" + profileID }
