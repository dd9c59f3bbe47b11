package resolvers

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/files"
	"github.com/jobchat/jobchat/internal/scalar"
)

// A plan is a messageAdded selection set compiled for encoding messages
// without gqlgen's executor: what the generated code would write, field by
// field, in the same order and with the same marshalers, so that a pushed
// subscription's bytes equal those of one run through gqlgen (a test holds
// the two side by side).
type plan struct {
	// head is `{"data":{"<alias>":`; the message object and `}}` follow.
	head   []byte
	fields []planField
	// text: the selection has messageText, which depends on the viewer
	// when the message is masked (the MASK contact policy).
	text bool
	// urls signs uploaded attachments' URLs, afresh at every encoding.
	urls *files.Signer
}

// encoder turns one event into the JSON of one GraphQL response for a
// subscription's selection. The hand plan above serves messageAdded
// selections it mirrors exactly; genPlan (gqlgen's generated marshalling)
// serves everything else.
type encoder interface {
	encode(ctx context.Context, v any) []byte
	// shareKey says which followers may share an encoding of v: those
	// whose keys are equal ("" for everyone). An encoding that depends on
	// the viewer must key it: by viewer, or by what the viewer sees.
	shareKey(fl *follower, v any) string
}

var _ encoder = (*plan)(nil)

// shareKey: the one field the hand plan writes that depends on the viewer
// is messageText, and only for a masked message, where it is the sender's
// (and the job-service's) text or the recipient's: two encodings at most,
// however many viewers. handSafe keeps every other per-viewer field out.
func (p *plan) shareKey(fl *follower, v any) string {
	if !p.text {
		return ""
	}
	if m, ok := v.(*db.Message); ok {
		return textView(fl.ctx, m)
	}
	return ""
}

type planField struct {
	key  []byte // `"alias":`
	kind fieldKind
	sub  []planField // for object fields
}

type fieldKind uint8

const (
	fTypename fieldKind = iota
	fMessageID
	fConversationID
	fSeq
	fSenderID
	fSenderName
	fSender
	fMessageText
	fMessageType
	fLocation
	fAttachment
	fClientMessageID
	fTimestamp
	fIsRead
	fStatus
	fEditedAt
	fDeletedAt
	fJobEvent
	fFlags
	fProfileID
	fProfileName
	fProfileAvatar
	fLatitude
	fLongitude
	fLabel
	fURL
	fFileName
	fMimeType
	fSizeBytes
	fAttachmentID
	fWidth
	fHeight
	fThumbnailURL
)

// fieldsOf maps each object type a messageAdded selection can reach to
// the fields the hand encoder writes. A field missing here (reactions,
// whose reactedByMe depends on the viewer, or one added to the schema
// later) makes compile decline, and the selection is encoded by gqlgen's
// generated code instead. A field here that gains a resolver or a
// directive the encoder does not mirror is declined too (handSafe), and
// TestHandEncoderGuard fails, naming it.
var fieldsOf = map[string]map[string]fieldKind{
	"Message": {
		"__typename": fTypename, "id": fMessageID, "conversationId": fConversationID, "seq": fSeq,
		"senderId": fSenderID, "senderName": fSenderName, "sender": fSender, "messageText": fMessageText,
		"messageType": fMessageType, "location": fLocation, "attachment": fAttachment,
		"clientMessageId": fClientMessageID, "timestamp": fTimestamp, "isRead": fIsRead,
		"status": fStatus, "editedAt": fEditedAt, "deletedAt": fDeletedAt, "jobEvent": fJobEvent,
		"flags": fFlags,
	},
	"Profile":  {"__typename": fTypename, "id": fProfileID, "displayName": fProfileName, "avatarUrl": fProfileAvatar},
	"Location": {"__typename": fTypename, "latitude": fLatitude, "longitude": fLongitude, "label": fLabel},
	"Attachment": {"__typename": fTypename, "url": fURL, "fileName": fFileName, "mimeType": fMimeType, "sizeBytes": fSizeBytes,
		"id": fAttachmentID, "width": fWidth, "height": fHeight, "thumbnailUrl": fThumbnailURL},
}

var objectType = map[fieldKind]string{fSender: "Profile", fLocation: "Location", fAttachment: "Attachment"}

// compilePlan compiles the selection of field (messageAdded) or reports
// false if some part of it is beyond the encoder.
func compilePlan(rc *graphql.OperationContext, field graphql.CollectedField) (*plan, bool) {
	p := &plan{}
	fields, ok := p.compile(rc, field.Selections, "Message")
	if !ok {
		return nil, false
	}
	p.fields = fields
	var head bytes.Buffer
	head.WriteString(`{"data":{`)
	graphql.MarshalString(field.Alias).MarshalGQL(&head)
	head.WriteByte(':')
	p.head = head.Bytes()
	return p, true
}

func (p *plan) compile(rc *graphql.OperationContext, sel ast.SelectionSet, typ string) ([]planField, bool) {
	known := fieldsOf[typ]
	var out []planField
	for _, f := range graphql.CollectFields(rc, sel, []string{typ}) {
		kind, ok := known[f.Name]
		if !ok || len(f.Arguments) > 0 || !handSafe(typ, f.Name) {
			return nil, false
		}
		var key bytes.Buffer
		graphql.MarshalString(f.Alias).MarshalGQL(&key)
		key.WriteByte(':')
		pf := planField{key: key.Bytes(), kind: kind}
		if kind == fMessageText {
			p.text = true
		}
		if sub, isObject := objectType[kind]; isObject {
			if pf.sub, ok = p.compile(rc, f.Selections, sub); !ok {
				return nil, false
			}
		}
		out = append(out, pf)
	}
	return out, true
}

// item is what one encoding reads: the message, with its Known state set
// (the feed sets it for every message it delivers), and the profile
// being written, for Profile objects.
type item struct {
	m      *db.Message
	sender *db.Profile // nil: none (SYSTEM) or unknown
	isRead bool
	status model.MessageStatus
	urls   *files.Signer
}

func itemOf(m *db.Message) item {
	it := item{m: m, status: model.MessageStatusSent}
	if k := m.Known; k != nil {
		it.sender, it.isRead = k.Sender, k.Read
		it.status = statusOf(k)
	}
	return it
}

// statusOf is Message.status from a message's known state.
func statusOf(k *db.MessageState) model.MessageStatus {
	switch {
	case k.Read:
		return model.MessageStatusRead
	case k.Delivered:
		return model.MessageStatusDelivered
	}
	return model.MessageStatusSent
}

// encode writes the response for a *db.Message with its Known state:
// {"data":{"alias":{…}}}.
func (p *plan) encode(ctx context.Context, v any) []byte {
	it := itemOf(v.(*db.Message))
	it.urls = p.urls
	b := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(b)
	b.Reset()
	b.Write(p.head)
	writeObject(ctx, b, p.fields, it, "Message")
	b.WriteString("}}")
	return bytes.Clone(b.Bytes())
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func writeObject(ctx context.Context, b *bytes.Buffer, fields []planField, it item, typ string) {
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(f.key)
		writeField(ctx, b, f, it, typ)
	}
	b.WriteByte('}')
}

func writeField(ctx context.Context, b *bytes.Buffer, f planField, it item, typ string) {
	m := it.m
	switch f.kind {
	case fTypename:
		graphql.MarshalString(typ).MarshalGQL(b)
	case fMessageID:
		graphql.MarshalID(m.ID).MarshalGQL(b)
	case fConversationID:
		graphql.MarshalID(m.ConversationID).MarshalGQL(b)
	case fSeq:
		graphql.MarshalInt64(m.Seq).MarshalGQL(b)
	case fSenderID:
		writeOptID(b, m.SenderID)
	case fSenderName:
		writeOptString(b, m.SenderName)
	case fSender:
		if it.sender == nil {
			b.WriteString("null")
			return
		}
		writeObject(ctx, b, f.sub, it, "Profile")
	case fMessageText:
		graphql.MarshalString(textFor(ctx, m)).MarshalGQL(b)
	case fMessageType:
		m.MessageType.MarshalGQL(b)
	case fLocation:
		if m.LocationLatitude == nil || m.LocationLongitude == nil {
			b.WriteString("null")
			return
		}
		writeObject(ctx, b, f.sub, it, "Location")
	case fAttachment:
		if !m.HasAttachment() {
			b.WriteString("null")
			return
		}
		writeObject(ctx, b, f.sub, it, "Attachment")
	case fClientMessageID:
		writeOptString(b, m.ClientMessageID)
	case fTimestamp:
		scalar.MarshalTime(m.CreatedAt).MarshalGQL(b)
	case fIsRead:
		graphql.MarshalBoolean(it.isRead).MarshalGQL(b)
	case fStatus:
		it.status.MarshalGQL(b)
	case fEditedAt:
		writeOptTime(b, m.EditedAt)
	case fDeletedAt:
		writeOptTime(b, m.DeletedAt)
	case fJobEvent:
		if m.JobEvent == nil {
			b.WriteString("null")
			return
		}
		m.JobEvent.MarshalGQL(b)
	case fFlags:
		b.WriteByte('[')
		for i, fl := range m.Flags {
			if i > 0 {
				b.WriteByte(',')
			}
			fl.MarshalGQL(b)
		}
		b.WriteByte(']')
	case fProfileID:
		graphql.MarshalID(it.sender.ID).MarshalGQL(b)
	case fProfileName:
		graphql.MarshalString(it.sender.DisplayName).MarshalGQL(b)
	case fProfileAvatar:
		writeOptString(b, it.sender.AvatarURL)
	case fLatitude:
		_ = graphql.MarshalFloatContext(*m.LocationLatitude).MarshalGQLContext(ctx, b)
	case fLongitude:
		_ = graphql.MarshalFloatContext(*m.LocationLongitude).MarshalGQLContext(ctx, b)
	case fLabel:
		writeOptString(b, m.LocationLabel)
	case fURL:
		graphql.MarshalString(attachmentURL(it.urls, m)).MarshalGQL(b)
	case fFileName:
		writeOptString(b, m.AttachmentFileName)
	case fMimeType:
		writeOptString(b, m.AttachmentMimeType)
	case fSizeBytes:
		if m.AttachmentSizeBytes == nil {
			b.WriteString("null")
			return
		}
		graphql.MarshalInt(int(*m.AttachmentSizeBytes)).MarshalGQL(b)
	case fAttachmentID:
		writeOptID(b, m.AttachmentID)
	case fWidth:
		writeOptInt(b, m.AttachmentWidth)
	case fHeight:
		writeOptInt(b, m.AttachmentHeight)
	case fThumbnailURL:
		writeOptString(b, thumbnailURL(it.urls, m))
	}
}

func writeOptInt(b *bytes.Buffer, n *int) {
	if n == nil {
		b.WriteString("null")
		return
	}
	graphql.MarshalInt(*n).MarshalGQL(b)
}

func writeOptString(b *bytes.Buffer, s *string) {
	if s == nil {
		b.WriteString("null")
		return
	}
	graphql.MarshalString(*s).MarshalGQL(b)
}

func writeOptTime(b *bytes.Buffer, t *time.Time) {
	if t == nil {
		b.WriteString("null")
		return
	}
	scalar.MarshalTime(*t).MarshalGQL(b)
}

func writeOptID(b *bytes.Buffer, s *string) {
	if s == nil {
		b.WriteString("null")
		return
	}
	graphql.MarshalID(*s).MarshalGQL(b)
}

// variesWithVariables reports whether what sel selects may depend on the
// operation's variables: directives (@include, @skip) or arguments
// anywhere in it, fragments included. Such selections are not cached.
func variesWithVariables(rc *graphql.OperationContext, sel ast.SelectionSet, depth int) bool {
	if depth > 10 {
		return true // too deep to bother: don't cache
	}
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if len(s.Directives) > 0 || len(s.Arguments) > 0 || variesWithVariables(rc, s.SelectionSet, depth+1) {
				return true
			}
		case *ast.InlineFragment:
			if len(s.Directives) > 0 || variesWithVariables(rc, s.SelectionSet, depth+1) {
				return true
			}
		case *ast.FragmentSpread:
			if len(s.Directives) > 0 {
				return true
			}
			if def := rc.Doc.Fragments.ForName(s.Name); def == nil || len(def.Directives) > 0 || variesWithVariables(rc, def.SelectionSet, depth+1) {
				return true
			}
		}
	}
	return false
}
