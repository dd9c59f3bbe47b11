package resolvers

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/files"
	"github.com/jobchat/jobchat/internal/media"
)

// uploadAttachment stores a participant's file for their conversation, to
// be sent with sendMessage. The order of the checks matters: who may
// upload (strangers learn nothing, not even the rate limit), then the
// rate, and only then is the body read.
func (r *Resolver) uploadAttachment(ctx context.Context, conversationID string, file graphql.Upload) (*model.Attachment, error) {
	c, err := userCaller(ctx, "uploadAttachment")
	if err != nil {
		return nil, err
	}
	if err := checkID("conversationId", conversationID); err != nil {
		return nil, err
	}
	if r.cfg.Files == nil || r.cfg.FileURLs == nil {
		return nil, errors.New("upload attachment: no file store is configured")
	}
	if err := r.checkAccess(ctx, c, conversationID); err != nil {
		return nil, err
	}
	if err := r.requireOpen(ctx, conversationID); err != nil {
		return nil, err
	}
	// Not refunded when the file is refused: reading and checking it is
	// the work the limit bounds.
	if ok, wait := r.allow(ctx, r.uploads, "upload", c.ID); !ok {
		return nil, &rateLimitedError{RetryAfter: wait, Doing: "uploading"}
	}

	res, err := r.media.Process(ctx, file.File)
	var refused *media.Refused
	if errors.As(err, &refused) {
		return nil, badInput("file", "%s", refused.Reason)
	}
	if err != nil {
		return nil, fmt.Errorf("upload attachment: %w", err)
	}
	defer func() {
		if err := res.Close(); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("remove an upload's temporary files")
		}
	}()

	name, keyName := fileNames(file.Filename, res.Ext)
	a := &db.UploadedFile{
		ID:             db.NewID(),
		ConversationID: conversationID,
		UploaderID:     c.ID,
		ContentType:    res.ContentType,
		Name:           name,
		SizeBytes:      res.Size,
	}
	// <conversation>/<upload>/<name>: the last segment names the download
	// (files.Disposition).
	a.FileKey = conversationID + "/" + a.ID + "/" + keyName
	if res.IsImage() {
		a.Width, a.Height = &res.Width, &res.Height
	}
	if res.Thumb != nil {
		thumb := conversationID + "/" + a.ID + "/thumb.jpg"
		a.ThumbKey = &thumb
	}
	// The row first, the files after: a process that dies in between
	// leaves a row the sweep of unsent uploads deletes, with whatever
	// files it names, where files first would leave files nothing names.
	// Nobody can send the row before this returns its id.
	if err := db.InsertAttachment(ctx, r.db, a); err != nil {
		return nil, fmt.Errorf("upload attachment: %w", err)
	}
	if err := r.storeFiles(ctx, a, res); err != nil {
		if _, derr := db.DeleteUnsentAttachment(context.WithoutCancel(ctx), r.db, a.ID); derr != nil {
			zerolog.Ctx(ctx).Error().Err(derr).Str("attachment_id", a.ID).Msg("remove the row of an upload whose files failed; the sweep will")
		}
		r.deleteFiles(ctx, a)
		return nil, fmt.Errorf("upload attachment: %w", err)
	}
	m := &db.Message{}
	m.WithAttachment(a)
	return r.attachmentOf(m), nil
}

// storeFiles puts an upload's file, and its thumbnail if any, in the store.
func (r *Resolver) storeFiles(ctx context.Context, a *db.UploadedFile, res *media.Result) error {
	if err := r.cfg.Files.Put(ctx, a.FileKey, res.File, res.Size, res.ContentType); err != nil {
		return fmt.Errorf("store file: %w", err)
	}
	if a.ThumbKey != nil {
		if err := r.cfg.Files.Put(ctx, *a.ThumbKey, res.Thumb, res.ThumbSize, "image/jpeg"); err != nil {
			return fmt.Errorf("store thumbnail: %w", err)
		}
	}
	return nil
}

// deleteFiles removes an upload's stored files, even when ctx is done
// (the request that stored them went away); a failure is logged, and
// leaves files that no row names.
func (r *Resolver) deleteFiles(ctx context.Context, a *db.UploadedFile) {
	ctx = context.WithoutCancel(ctx)
	keys := []string{a.FileKey}
	if a.ThumbKey != nil {
		keys = append(keys, *a.ThumbKey)
	}
	for _, k := range keys {
		if err := r.cfg.Files.Delete(ctx, k); err != nil {
			zerolog.Ctx(ctx).Error().Err(err).Str("key", k).Msg("delete an upload's file")
		}
	}
}

// fileNames makes an upload's names from the one its client sent, with
// the extension of the type it really is: name, as Attachment.fileName
// shows it (control characters, bidi controls and path separators
// replaced, at most maxFileNameLen characters), and keyName, its ASCII
// form for the file's key and URL.
func fileNames(sent, ext string) (name, keyName string) {
	sent = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) || isBidiControl(r) || r == utf8.RuneError {
			return '_'
		}
		return r
	}, path.Base(strings.ReplaceAll(sent, "\\", "/")))
	stem := strings.TrimSpace(sent)
	if e := path.Ext(stem); strings.EqualFold(e, ext) || (ext == ".jpg" && strings.EqualFold(e, ".jpeg")) {
		stem = strings.TrimSuffix(stem, e)
	}
	stem = strings.Trim(stem, ". ")
	if stem == "" {
		stem = "file"
	}
	if n := maxFileNameLen - utf8.RuneCountInString(ext); utf8.RuneCountInString(stem) > n {
		stem = string([]rune(stem)[:n])
	}
	name = stem + ext

	var b strings.Builder
	for _, r := range stem {
		switch {
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.'):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 80 {
			break
		}
	}
	keyName = strings.Trim(b.String(), ".")
	if strings.Trim(keyName, "_") == "" {
		keyName = "file"
	}
	return name, keyName + ext
}

// attachmentOf is Message.attachment, for the resolver and the hand
// encoder alike: an upload's URLs are signed here, at every read.
func (r *Resolver) attachmentOf(m *db.Message) *model.Attachment {
	if !m.HasAttachment() {
		return nil
	}
	a := &model.Attachment{
		URL: attachmentURL(r.cfg.FileURLs, m), ThumbnailURL: thumbnailURL(r.cfg.FileURLs, m),
		FileName: m.AttachmentFileName, MimeType: m.AttachmentMimeType,
		ID: m.AttachmentID, Width: m.AttachmentWidth, Height: m.AttachmentHeight,
	}
	if m.AttachmentSizeBytes != nil {
		n := int(*m.AttachmentSizeBytes)
		a.SizeBytes = &n
	}
	return a
}

// attachmentURL is Attachment.url: the URL a sender gave, or an upload's
// /files/ URL signed now.
func attachmentURL(urls *files.Signer, m *db.Message) string {
	switch {
	case m.AttachmentURL != nil:
		return *m.AttachmentURL
	case m.AttachmentKey != nil && urls != nil:
		return urls.URL(*m.AttachmentKey)
	}
	return ""
}

// thumbnailURL is Attachment.thumbnailUrl: an image upload's thumbnail's
// URL signed now, or nil.
func thumbnailURL(urls *files.Signer, m *db.Message) *string {
	if m.AttachmentThumbKey == nil || urls == nil {
		return nil
	}
	u := urls.URL(*m.AttachmentThumbKey)
	return &u
}

// sendableUpload reads the upload a send names and checks that the
// sender may send it here as typ: their own, to this conversation, not
// sent before, an image if typ is IMAGE. The send's transaction checks again (db.ErrAttachmentTaken), so
// that two sends racing cannot both take it. A retry of a send that took
// it is answered before this, from the clientMessageId.
func (r *Resolver) sendableUpload(ctx context.Context, c auth.Caller, conversationID, id string, typ db.MessageType) (*db.UploadedFile, error) {
	a, err := db.SelectAttachment(ctx, r.db, id)
	switch {
	case errors.Is(err, db.ErrNotFound) || (err == nil && a.UploaderID != c.ID):
		// Someone else's upload is no business of the sender's.
		return nil, badInput("input.attachment.id", "no upload of yours has this id (uploads not sent within a day are deleted)")
	case err != nil:
		return nil, fmt.Errorf("send message: %w", err)
	case a.ConversationID != conversationID:
		return nil, badInput("input.attachment.id", "was uploaded to another conversation: upload it again to this one")
	case a.MessageID != nil:
		return nil, badInput("input.attachment.id", "was already sent")
	case typ == db.MessageImage && a.Width == nil:
		return nil, badInput("input.attachment.id", "is not an image (%s): send it as a FILE message", a.ContentType)
	}
	return a, nil
}
