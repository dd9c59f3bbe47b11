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
const (
	maxIDLen       = 128
	maxNameLen     = 200
	maxURLLen      = 2048
	maxLabelLen    = 200
	maxPageSize    = 100
	defaultPage    = 50
	maxFileNameLen = 255
)

// checkText applies the rules every stored text follows: valid UTF-8, no
// NUL, at most max characters; required texts must also not be blank.
func checkText(field, s string, max int, required bool) error {
	if !utf8.ValidString(s) {
		return badInput(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return badInput(field, "must not contain NUL characters")
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

func checkID(field, s string) error {
	return checkText(field, s, maxIDLen, true)
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
		if err := checkID("input.clientMessageId", *in.ClientMessageID); err != nil {
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
		if err := checkHTTPURL("input.attachment.url", att.URL); err != nil {
			return typ, err
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
