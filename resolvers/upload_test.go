package resolvers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/files"
	"github.com/jobchat/jobchat/internal/media/mediatest"
)

// TestValidateAttachment: an IMAGE or FILE message names its file by url
// or by upload id, exactly one of them.
func TestValidateAttachment(t *testing.T) {
	r := New(nil, nil, Config{})
	str := func(s string) *string { return &s }
	size := 12
	for _, tc := range []struct {
		name  string
		typ   db.MessageType
		att   *model.AttachmentInput
		field string // "" for accepted
	}{
		{"url", db.MessageImage, &model.AttachmentInput{URL: str("https://x.test/a.png")}, ""},
		{"url with details", db.MessageFile, &model.AttachmentInput{URL: str("https://x.test/a.pdf"), FileName: str("a.pdf"), SizeBytes: &size}, ""},
		{"upload id", db.MessageImage, &model.AttachmentInput{ID: str("019b0000-0000-7000-8000-000000000000")}, ""},
		{"neither", db.MessageImage, &model.AttachmentInput{}, "input.attachment"},
		{"both", db.MessageFile, &model.AttachmentInput{URL: str("https://x.test/a.pdf"), ID: str("u1")}, "input.attachment"},
		{"id with a name", db.MessageFile, &model.AttachmentInput{ID: str("u1"), FileName: str("x.pdf")}, "input.attachment"},
		{"blank id", db.MessageFile, &model.AttachmentInput{ID: str("  ")}, "input.attachment.id"},
		{"relative url", db.MessageFile, &model.AttachmentInput{URL: str("/files/x")}, "input.attachment.url"},
		{"missing", db.MessageImage, nil, "input.attachment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := tc.typ
			_, err := r.validateSend(model.SendMessageInput{ConversationID: "c", MessageType: &typ, Attachment: tc.att})
			var in *inputError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (!errors.As(err, &in) || in.Field != tc.field):
				t.Fatalf("err = %v, want BAD_USER_INPUT on %s", err, tc.field)
			}
		})
	}
}

func TestFileNames(t *testing.T) {
	for _, tc := range []struct{ sent, ext, name, key string }{
		{"photo.jpg", ".jpg", "photo.jpg", "photo.jpg"},
		{"IMG_0001.JPEG", ".jpg", "IMG_0001.jpg", "IMG_0001.jpg"},
		{"invoice.exe", ".pdf", "invoice.exe.pdf", "invoice.exe.pdf"},
		{"../../etc/passwd", ".txt", "passwd.txt", "passwd.txt"},
		{`C:\Users\ana\Plan.docx`, ".docx", "Plan.docx", "Plan.docx"},
		{"Fuga na pia – cozinha.png", ".png", "Fuga na pia – cozinha.png", "Fuga_na_pia___cozinha.png"},
		{"", ".pdf", "file.pdf", "file.pdf"},
		{"...", ".txt", "file.txt", "file.txt"},
		{"ü.pdf", ".pdf", "ü.pdf", "file.pdf"},
		{"a\x00b\nc.txt", ".txt", "a_b_c.txt", "a_b_c.txt"},
		{strings.Repeat("x", 300) + ".pdf", ".pdf", strings.Repeat("x", 251) + ".pdf", strings.Repeat("x", 80) + ".pdf"},
	} {
		name, key := fileNames(tc.sent, tc.ext)
		if name != tc.name || key != tc.key {
			t.Errorf("fileNames(%q, %q) = %q, %q; want %q, %q", tc.sent, tc.ext, name, key, tc.name, tc.key)
		}
	}
}

// uploadFixture is a resolver over a real database and a disk store, with
// a clock the test moves.
type uploadFixture struct {
	r     *Resolver
	conv  string
	other string // a conversation of ana's without ben
	store *files.DiskStore
	dir   string // the store's
	mu    sync.Mutex
	now   time.Time
}

func (f *uploadFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *uploadFixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func newUploadFixture(t *testing.T, dialect string, rate int) *uploadFixture {
	t.Helper()
	hub, err := broadcast.NewHub(broadcast.NewMemoryBroker(), broadcast.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	dir := t.TempDir()
	store, err := files.NewDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &uploadFixture{store: store, dir: dir, now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	f.r = New(dbtest.New(t, dialect), hub, Config{
		Files: store, FileURLs: files.NewSigner([]byte("upload-test-key-0123456789-abcdef"), time.Hour),
		UploadRate: rate, Now: f.clock, UploadTempDir: t.TempDir(),
	})
	open := func(job, worker string) string {
		conv, _, _, err := f.r.openConversation(context.Background(), model.CreateConversationInput{
			JobID: job, JobTitle: "Leaking sink",
			Client: &model.ProfileInput{ID: "ana", DisplayName: "Ana"},
			Worker: &model.ProfileInput{ID: worker, DisplayName: worker},
		})
		if err != nil {
			t.Fatal(err)
		}
		return conv.ID
	}
	f.conv, f.other = open("job-1", "ben"), open("job-2", "carl")
	return f
}

func (f *uploadFixture) upload(who, conv, name string, data []byte) (*model.Attachment, error) {
	ctx := auth.WithCaller(context.Background(), auth.Caller{ID: who, Name: who})
	return f.r.uploadAttachment(ctx, conv, graphql.Upload{File: bytes.NewReader(data), Filename: name, Size: -1})
}

func (f *uploadFixture) send(who, conv string, typ db.MessageType, id string) (*db.Message, error) {
	ctx := auth.WithCaller(context.Background(), auth.Caller{ID: who, Name: who})
	in := model.SendMessageInput{ConversationID: conv, MessageType: &typ, Attachment: &model.AttachmentInput{ID: &id}}
	if _, err := f.r.validateSend(in); err != nil {
		return nil, err
	}
	return f.r.send(ctx, auth.Caller{ID: who, Name: who}, typ, in)
}

// codeOf is the error's extensions.code and, for BAD_USER_INPUT, its
// field.
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	e := ErrorPresenter(context.Background(), err)
	code, _ := e.Extensions["code"].(string)
	if field, ok := e.Extensions["field"].(string); ok {
		code += " " + field
	}
	return code
}

// TestUploadRules: who may upload and send an upload, and where.
func TestUploadRules(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newUploadFixture(t, dialect, 0)
			photo := mediatest.JPEGWithGPS(64, 48, 6)
			a, err := f.upload("ana", f.conv, "sink.jpg", photo)
			if err != nil {
				t.Fatal(err)
			}
			if a.ID == nil || *a.Width != 48 || *a.Height != 64 || a.ThumbnailURL == nil || *a.MimeType != "image/jpeg" ||
				!strings.HasPrefix(a.URL, files.PathPrefix+f.conv+"/") || !strings.HasSuffix(strings.Split(a.URL, "?")[0], "/sink.jpg") {
				t.Fatalf("upload: %+v", a)
			}
			pdf, err := f.upload("ana", f.conv, "quote.pdf", []byte("%PDF-1.4\n%%EOF\n"))
			if err != nil {
				t.Fatal(err)
			}
			elsewhere, err := f.upload("ana", f.other, "x.txt", []byte("hello"))
			if err != nil {
				t.Fatal(err)
			}

			for _, tc := range []struct {
				name, who, conv string
				data            []byte
				want            string
			}{
				{"stranger", "carl", f.conv, photo, "NOT_FOUND"},
				{"no such conversation", "ana", "nope", photo, "NOT_FOUND"},
				{"html", "ana", f.conv, []byte("<html><script>alert(1)</script></html>"), "BAD_USER_INPUT file"},
				{"bomb", "ana", f.conv, mediatest.PNGBomb(50000, 50000), "BAD_USER_INPUT file"},
			} {
				if _, err := f.upload(tc.who, tc.conv, "f", tc.data); codeOf(err) != tc.want {
					t.Errorf("%s: %v (%s), want %s", tc.name, err, codeOf(err), tc.want)
				}
			}
			svc := auth.WithCaller(context.Background(), auth.Caller{ID: "job-service", Service: true})
			if _, err := f.r.uploadAttachment(svc, f.conv, graphql.Upload{File: bytes.NewReader(photo)}); codeOf(err) != "FORBIDDEN" {
				t.Errorf("service upload: %v", err)
			}

			for _, tc := range []struct {
				name, who, conv string
				typ             db.MessageType
				id              string
				want            string
			}{
				{"another conversation's", "ana", f.conv, db.MessageFile, *elsewhere.ID, "BAD_USER_INPUT input.attachment.id"},
				{"someone else's", "ben", f.conv, db.MessageImage, *a.ID, "BAD_USER_INPUT input.attachment.id"},
				{"unknown", "ana", f.conv, db.MessageImage, "nope", "BAD_USER_INPUT input.attachment.id"},
				{"a PDF as an IMAGE", "ana", f.conv, db.MessageImage, *pdf.ID, "BAD_USER_INPUT input.attachment.id"},
				{"photo", "ana", f.conv, db.MessageImage, *a.ID, ""},
				{"photo again", "ana", f.conv, db.MessageImage, *a.ID, "BAD_USER_INPUT input.attachment.id"},
				{"a PDF as a FILE", "ana", f.conv, db.MessageFile, *pdf.ID, ""},
			} {
				m, err := f.send(tc.who, tc.conv, tc.typ, tc.id)
				if codeOf(err) != tc.want {
					t.Fatalf("%s: %v (%s), want %q", tc.name, err, codeOf(err), tc.want)
				}
				if err == nil {
					got := f.r.attachmentOf(m)
					if got.ID == nil || *got.ID != tc.id || !strings.HasPrefix(got.URL, files.PathPrefix) {
						t.Fatalf("%s: sent attachment %+v", tc.name, got)
					}
				}
			}
		})
	}
}

// TestUploadRateLimit: a user may upload UploadRate files at once, then
// gets RATE_LIMITED with retryAfterMs, after which one goes through. The
// rate is high enough (60 a minute: a token a second) for the wait to be
// short, and the loop tolerates tokens coming back while it runs.
func TestUploadRateLimit(t *testing.T) {
	f := newUploadFixture(t, dbtest.SQLite, 60)
	text := []byte("see attached")
	var err error
	ok := 0
	for range 200 {
		if _, err = f.upload("ana", f.conv, "a.txt", text); err != nil {
			break
		}
		ok++
	}
	e := ErrorPresenter(context.Background(), err)
	ms, _ := e.Extensions["retryAfterMs"].(int64)
	if e.Extensions["code"] != CodeRateLimited || ms <= 0 || ms > 1000 || ok < 60 {
		t.Fatalf("after %d uploads: %v %v, want RATE_LIMITED within a second", ok, err, e.Extensions)
	}
	// Others are not held up.
	if _, err := f.upload("ben", f.conv, "b.txt", text); err != nil {
		t.Fatalf("ben's upload: %v", err)
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	if _, err := f.upload("ana", f.conv, "a.txt", text); err != nil {
		t.Fatalf("retry after retryAfterMs: %v", err)
	}
}

// TestSweepUploads: an upload never sent is deleted with its files once
// older than UploadMaxAge; a sent one, and a young one, stay.
func TestSweepUploads(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newUploadFixture(t, dialect, 0)
			ctx := context.Background()
			sent, err := f.upload("ana", f.conv, "a.jpg", mediatest.JPEGWithGPS(20, 20, 1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.send("ana", f.conv, db.MessageImage, *sent.ID); err != nil {
				t.Fatal(err)
			}
			unsent, err := f.upload("ana", f.conv, "b.jpg", mediatest.JPEGWithGPS(20, 20, 1))
			if err != nil {
				t.Fatal(err)
			}
			row, err := db.SelectAttachment(ctx, f.r.db, *unsent.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The clock of the rows is the database's; the sweeper's
			// cutoff is UploadMaxAge before the injected clock.
			f.mu.Lock()
			f.now = row.CreatedAt.Add(23 * time.Hour)
			f.mu.Unlock()
			if n, err := f.r.SweepUploads(ctx); err != nil || n != 0 {
				t.Fatalf("sweep before a day: %d, %v", n, err)
			}
			f.advance(2 * time.Hour)
			if n, err := f.r.SweepUploads(ctx); err != nil || n != 1 {
				t.Fatalf("sweep after a day: %d, %v", n, err)
			}
			if _, err := db.SelectAttachment(ctx, f.r.db, *unsent.ID); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("swept row: %v", err)
			}
			for _, k := range []string{row.FileKey, *row.ThumbKey} {
				if _, err := f.store.Open(ctx, k); !errors.Is(err, files.ErrNotFound) {
					t.Fatalf("swept file %s: %v", k, err)
				}
			}
			kept, err := db.SelectAttachment(ctx, f.r.db, *sent.ID)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := f.store.Open(ctx, kept.FileKey)
			if err != nil {
				t.Fatalf("sent file: %v", err)
			}
			_ = obj.Close()
			if _, err := f.send("ana", f.conv, db.MessageImage, *unsent.ID); codeOf(err) != "BAD_USER_INPUT input.attachment.id" {
				t.Fatalf("sending a swept upload: %v", err)
			}
		})
	}
}

// thumbFails is a store that refuses thumbnails: an upload that fails
// half-way through storing.
type thumbFails struct{ *files.DiskStore }

func (s thumbFails) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if strings.HasSuffix(key, "/thumb.jpg") {
		return errors.New("store unavailable")
	}
	return s.DiskStore.Put(ctx, key, r, size, contentType)
}

// TestUploadStoreFailureLeavesNothing: when storing fails half-way, the
// upload is refused and leaves neither a row nor a file behind.
func TestUploadStoreFailureLeavesNothing(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newUploadFixture(t, dialect, 0)
			f.r.cfg.Files = thumbFails{f.store}
			if _, err := f.upload("ana", f.conv, "a.jpg", mediatest.JPEGWithGPS(20, 20, 1)); codeOf(err) != "INTERNAL_SERVER_ERROR" {
				t.Fatalf("upload with a failing store: %v", err)
			}
			rows, err := db.SelectUnsentAttachments(context.Background(), f.r.db, time.Now().Add(time.Hour), 10)
			if err != nil || len(rows) != 0 {
				t.Fatalf("rows left: %d, %v", len(rows), err)
			}
			var left []string
			_ = filepath.WalkDir(f.dir, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					left = append(left, path)
				}
				return nil
			})
			if len(left) != 0 {
				t.Fatalf("files left: %v", left)
			}
		})
	}
}

// TestUploadLeavesNoTemporaryFiles: processing happens in UploadTempDir,
// and nothing stays there after an upload, accepted or refused.
func TestUploadLeavesNoTemporaryFiles(t *testing.T) {
	f := newUploadFixture(t, dbtest.SQLite, 0)
	dir := f.r.cfg.UploadTempDir
	_, _ = f.upload("ana", f.conv, "a.jpg", mediatest.JPEGWithGPS(20, 20, 1))
	_, _ = f.upload("ana", f.conv, "a.html", []byte("<html>"))
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("left in %s: %v", filepath.Base(dir), left)
	}
}

// TestWireCarriesUpload: an uploaded attachment crosses instances with its
// keys, so that each instance signs URLs for its own subscribers.
func TestWireCarriesUpload(t *testing.T) {
	w, h, thumb := 640, 480, "c/u/thumb.jpg"
	m := &db.Message{ID: "m", ConversationID: "c", Seq: 1, MessageType: db.MessageImage}
	m.WithAttachment(&db.UploadedFile{ID: "u", FileKey: "c/u/a.jpg", ThumbKey: &thumb, ContentType: "image/jpeg",
		Name: "a.jpg", SizeBytes: 10, Width: &w, Height: &h})
	payload, err := json.Marshal(toWireMessage(m, nil))
	if err != nil {
		t.Fatal(err)
	}
	wm, err := decodeWireMessage(payload)
	if err != nil {
		t.Fatal(err)
	}
	got := wm.message()
	if *got.AttachmentID != "u" || *got.AttachmentKey != "c/u/a.jpg" || *got.AttachmentThumbKey != thumb ||
		*got.AttachmentWidth != 640 || *got.AttachmentHeight != 480 || *got.AttachmentFileName != "a.jpg" || !got.HasAttachment() {
		t.Fatalf("round trip: %+v from %s", got, payload)
	}
}
