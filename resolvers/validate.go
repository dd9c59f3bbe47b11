package resolvers

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
)

// Limits on the small strings; the message text limit is configurable.
// maxIDLen is also the server's cap on every ID value, in variables and
// written into documents (server.Config.MaxIDLength), so that an id no row
// can have is refused before any query; MaxIDLength exports it for the
// wiring.
const (
	maxIDLen       = 64
	maxKeyLen      = 128
	maxNameLen     = 200
	maxURLLen      = 2048
	maxLabelLen    = 200
	maxPageSize    = 100
	defaultPage    = 50
	maxFileNameLen = 255
)

// MaxIDLength is the longest id the API takes, in characters.
const MaxIDLength = maxIDLen

// checkText applies the rules every stored text follows: valid UTF-8 (so
// no surrogate, paired or lone: a lone \ud800 escape in a request's JSON
// is refused before it is decoded, see package coerce), no NUL, no
// bidirectional embedding, override or isolate controls, at most max
// characters; required texts must also not be blank.
//
// The bidi controls (U+202A–U+202E, U+2066–U+2069) reorder how the text
// around them is shown without being visible themselves, which is how
// "invoice\u202Efdp.exe" reads as "invoiceexe.pdf". Right-to-left text
// needs none of them; the marks U+200E and U+200F, which cannot reorder
// anything beyond their neighbours, stay allowed.
func checkText(field, s string, max int, required bool) error {
	if !utf8.ValidString(s) {
		return badInput(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return badInput(field, "must not contain NUL characters")
	}
	if i := strings.IndexFunc(s, isBidiControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return badInput(field, "must not contain bidirectional control characters (U+%04X)", r)
	}
	if required && strings.TrimFunc(s, unicode.IsSpace) == "" {
		return badInput(field, "must not be blank")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return badInput(field, "must be at most %d characters (got %d)", max, n)
	}
	return nil
}

func checkOptText(field string, s *string, max int) error {
	if s == nil {
		return nil
	}
	return checkText(field, *s, max, false)
}

// isBidiControl reports the embedding and override controls (U+202A–U+202E)
// and the isolates (U+2066–U+2069).
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

func checkID(field, s string) error {
	return checkText(field, s, maxIDLen, true)
}

// checkKey checks a client-chosen key (clientMessageId, idempotencyKey):
// 1 to 128 printable ASCII characters (space to tilde), not all spaces.
// Keys end up in logs, URLs and other systems' databases; nothing there
// should have to escape them.
func checkKey(field, s string) error {
	if s == "" || strings.TrimLeft(s, " ") == "" {
		return badInput(field, "must not be blank")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7E {
			return badInput(field, "must be printable ASCII characters only (byte %d is 0x%02X)", i, c)
		}
	}
	// ASCII: the bytes are the characters.
	if len(s) > maxKeyLen {
		return badInput(field, "must be at most %d characters (got %d)", maxKeyLen, len(s))
	}
	return nil
}

// checkHTTPURL accepts absolute http and https URLs with a host.
func checkHTTPURL(field, s string) error {
	if err := checkText(field, s, maxURLLen, true); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badInput(field, "must be an absolute http or https URL")
	}
	return nil
}

// validateSend checks a user's message and returns its type.
func (r *Resolver) validateSend(in model.SendMessageInput) (db.MessageType, error) {
	typ := db.MessageText
	if in.MessageType != nil {
		typ = *in.MessageType
	}
	if err := checkID("input.conversationId", in.ConversationID); err != nil {
		return typ, err
	}
	if in.ClientMessageID != nil {
		if err := checkKey("input.clientMessageId", *in.ClientMessageID); err != nil {
			return typ, err
		}
	}
	if typ == db.MessageSystem {
		return typ, forbidden("input.messageType: users cannot send SYSTEM messages")
	}
	max := r.cfg.MaxMessageChars
	if typ == db.MessageText {
		if in.MessageText == nil {
			return typ, badInput("input.messageText", "is required for TEXT messages")
		}
		if err := checkText("input.messageText", *in.MessageText, max, true); err != nil {
			return typ, err
		}
	} else if err := checkOptText("input.messageText", in.MessageText, max); err != nil {
		return typ, err
	}

	if typ == db.MessageLocation {
		loc := in.Location
		if loc == nil {
			return typ, badInput("input.location", "is required for LOCATION messages")
		}
		if loc.Latitude < -90 || loc.Latitude > 90 {
			return typ, badInput("input.location.latitude", "must be between -90 and 90 (got %v)", loc.Latitude)
		}
		if loc.Longitude < -180 || loc.Longitude > 180 {
			return typ, badInput("input.location.longitude", "must be between -180 and 180 (got %v)", loc.Longitude)
		}
		if err := checkOptText("input.location.label", loc.Label, maxLabelLen); err != nil {
			return typ, err
		}
	} else if in.Location != nil {
		return typ, badInput("input.location", "is only allowed on LOCATION messages")
	}

	if typ == db.MessageImage || typ == db.MessageFile {
		att := in.Attachment
		if att == nil {
			return typ, badInput("input.attachment", "is required for %s messages", typ)
		}
		switch {
		case (att.URL == nil) == (att.ID == nil):
			return typ, badInput("input.attachment", "needs exactly one of url and id")
		case att.ID != nil:
			if err := checkID("input.attachment.id", *att.ID); err != nil {
				return typ, err
			}
			// An upload's name, type and size are its own.
			if att.FileName != nil || att.MimeType != nil || att.SizeBytes != nil {
				return typ, badInput("input.attachment", "takes no fileName, mimeType or sizeBytes with an id: the upload has its own")
			}
		default:
			if err := checkHTTPURL("input.attachment.url", *att.URL); err != nil {
				return typ, err
			}
		}
		if err := checkOptText("input.attachment.fileName", att.FileName, maxFileNameLen); err != nil {
			return typ, err
		}
		if err := checkOptText("input.attachment.mimeType", att.MimeType, maxNameLen); err != nil {
			return typ, err
		}
		if att.SizeBytes != nil && *att.SizeBytes < 0 {
			return typ, badInput("input.attachment.sizeBytes", "must not be negative")
		}
	} else if in.Attachment != nil {
		return typ, badInput("input.attachment", "is only allowed on IMAGE and FILE messages")
	}
	return typ, nil
}

// validateCreate checks the job-service's request to open a conversation.
func (r *Resolver) validateCreate(in model.CreateConversationInput) error {
	if err := checkID("input.jobId", in.JobID); err != nil {
		return err
	}
	if err := checkText("input.jobTitle", in.JobTitle, maxNameLen, true); err != nil {
		return err
	}
	for _, p := range []struct {
		field string
		in    *model.ProfileInput
	}{{"input.client", in.Client}, {"input.worker", in.Worker}} {
		if err := checkID(p.field+".id", p.in.ID); err != nil {
			return err
		}
		if err := checkText(p.field+".displayName", p.in.DisplayName, maxNameLen, true); err != nil {
			return err
		}
		if p.in.AvatarURL != nil {
			if err := checkHTTPURL(p.field+".avatarUrl", *p.in.AvatarURL); err != nil {
				return err
			}
		}
	}
	if in.Client.ID == in.Worker.ID {
		return badInput("input.worker.id", "must differ from input.client.id")
	}
	if in.SystemMessage != nil {
		return checkText("input.systemMessage", *in.SystemMessage, r.cfg.MaxMessageChars, true)
	}
	return nil
}
