package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/media/mediatest"
)

// Uploads end to end: real multipart bodies over real HTTP, the files read
// back through their signed URLs, on both databases.

const uploadMutation = `mutation($c: ID!, $f: Upload!) { uploadAttachment(conversationId: $c, file: $f) { ` + attachmentFields + ` } }`

const attachmentFields = `id url thumbnailUrl fileName mimeType sizeBytes width height`

type attachment struct {
	ID           *string `json:"id"`
	URL          string  `json:"url"`
	ThumbnailURL *string `json:"thumbnailUrl"`
	FileName     *string `json:"fileName"`
	MimeType     *string `json:"mimeType"`
	SizeBytes    *int    `json:"sizeBytes"`
	Width        *int    `json:"width"`
	Height       *int    `json:"height"`
}

// uploadRequest is one multipart upload: the file's bytes come from body,
// streamed through a pipe, so a test can send more than it holds.
type uploadRequest struct {
	token, conv, filename string
	body                  io.Reader
	// csrf is the Apollo-Require-Preflight header; "" sends none.
	csrf string
	// contentLength, when positive, is declared; otherwise the body is
	// chunked.
	contentLength int64
}

// multipartUpload writes an uploadAttachment request in the GraphQL
// multipart request spec's order: operations, map, the file.
func multipartUpload(w *multipart.Writer, conv, filename string, file io.Reader) error {
	ops, _ := json.Marshal(map[string]any{"query": uploadMutation, "variables": map[string]any{"c": conv, "f": nil}})
	if err := w.WriteField("operations", string(ops)); err != nil {
		return err
	}
	if err := w.WriteField("map", `{"0":["variables.f"]}`); err != nil {
		return err
	}
	fw, err := w.CreateFormFile("0", filename)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, file); err != nil {
		return err
	}
	return w.Close()
}

func (e *env) upload(tb testing.TB, u uploadRequest) (int, gqlResponse) {
	tb.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(multipartUpload(mw, u.conv, u.filename, u.body))
	}()
	// The server may answer before it has read the whole body: then the
	// writer stops here, and is done before the caller looks at the body.
	defer func() {
		pr.CloseWithError(errors.New("the answer is in"))
		<-written
	}()
	req, err := http.NewRequest(http.MethodPost, e.url+"/query", pr)
	if err != nil {
		tb.Fatal(err)
	}
	if u.contentLength > 0 {
		req.ContentLength = u.contentLength
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+u.token)
	if u.csrf != "" {
		req.Header.Set("Apollo-Require-Preflight", u.csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST /query (multipart): %v", err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("decode response (status %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// uploadOK uploads data as filename and returns the attachment.
func (e *env) uploadOK(tb testing.TB, token, conv, filename string, data []byte) attachment {
	tb.Helper()
	status, r := e.upload(tb, uploadRequest{token: token, conv: conv, filename: filename, body: bytes.NewReader(data), csrf: "1"})
	var out struct {
		A attachment `json:"uploadAttachment"`
	}
	r.ok(tb, &out)
	if status != http.StatusOK {
		tb.Fatalf("status %d", status)
	}
	return out.A
}

// fetch GETs a URL relative to the server and returns the response with
// its body read.
func (e *env) fetch(tb testing.TB, url string) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.Get(e.url + url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

// countingReader counts what the client has taken of a body.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// zeros reads as n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

const uploadLimit = 1 << 20 // JOBCHAT_MAX_UPLOAD_BYTES in these tests

func TestUploads(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_MAX_UPLOAD_BYTES": fmt.Sprint(uploadLimit)})
			ana, ben, carl := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), userToken(t, "carl", "Carl")
			conv := e.openJob(t, "job-1", "ana", "ben", "")
			other := e.openJob(t, "job-2", "ana", "dora", "")

			t.Run("photo loses its GPS, is sent, arrives live and is fetched", func(t *testing.T) {
				photo := mediatest.JPEGWithGPS(640, 480, 6) // a portrait taken on its side
				a := e.uploadOK(t, ana, conv.ID, "sink.jpg", photo)
				if a.ID == nil || *a.Width != 480 || *a.Height != 640 || *a.MimeType != "image/jpeg" || *a.FileName != "sink.jpg" ||
					!strings.HasPrefix(a.URL, "/files/") || a.ThumbnailURL == nil {
					t.Fatalf("upload: %+v", a)
				}
				resp, stored := e.fetch(t, a.URL)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" ||
					resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Disposition") != "inline" {
					t.Fatalf("GET photo: %d %v", resp.StatusCode, resp.Header)
				}
				if bytes.Contains(stored, []byte("Exif")) || bytes.Contains(stored, []byte(mediatest.GPSMarker)) ||
					bytes.IndexByte(mediatest.JPEGSegments(stored), 0xE1) >= 0 || *a.SizeBytes != len(stored) {
					t.Fatalf("the stored copy keeps EXIF (segments % x) or has another size", mediatest.JPEGSegments(stored))
				}
				if img, err := jpeg.Decode(bytes.NewReader(stored)); err != nil || img.Bounds().Dx() != 480 {
					t.Fatalf("stored photo: %v", err)
				}

				// Ben follows the conversation; Ana sends the photo.
				ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
				sub := ws.subscribe(`subscription($c: ID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { id messageType attachment { `+attachmentFields+` } } }`,
					map[string]any{"c": conv.ID, "after": conv.LastSeq})
				var sent struct {
					M struct {
						ID         string      `json:"id"`
						Attachment *attachment `json:"attachment"`
					} `json:"sendMessage"`
				}
				e.do(t, ana, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id attachment { `+attachmentFields+` } } }`,
					map[string]any{"in": map[string]any{"conversationId": conv.ID, "messageType": "IMAGE", "attachment": map[string]any{"id": *a.ID}}}).ok(t, &sent)
				if sent.M.Attachment == nil || *sent.M.Attachment.ID != *a.ID || *sent.M.Attachment.Width != 480 {
					t.Fatalf("sent: %+v", sent.M.Attachment)
				}
				live := ws.next()
				var p struct {
					Data struct {
						M struct {
							ID          string     `json:"id"`
							MessageType string     `json:"messageType"`
							Attachment  attachment `json:"attachment"`
						} `json:"messageAdded"`
					} `json:"data"`
				}
				if err := json.Unmarshal(live.Payload, &p); err != nil || live.ID != sub || p.Data.M.ID != sent.M.ID {
					t.Fatalf("live: %+v %s", live, live.Payload)
				}
				got := p.Data.M.Attachment
				if p.Data.M.MessageType != "IMAGE" || *got.ID != *a.ID || *got.Height != 640 || got.ThumbnailURL == nil {
					t.Fatalf("live attachment: %+v", got)
				}
				if resp, b := e.fetch(t, got.URL); resp.StatusCode != 200 || !bytes.Equal(b, stored) {
					t.Fatalf("GET the live URL: %d", resp.StatusCode)
				}
				resp, thumb := e.fetch(t, *got.ThumbnailURL)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
					t.Fatalf("GET thumbnail: %d %v", resp.StatusCode, resp.Header)
				}
				if img, err := jpeg.Decode(bytes.NewReader(thumb)); err != nil || img.Bounds().Dx() != 240 || img.Bounds().Dy() != 320 {
					t.Fatalf("thumbnail: %v", err)
				}

				// Read back from history: a URL signed for this read.
				var hist struct {
					Messages struct {
						Edges []struct {
							Node struct {
								Attachment *attachment `json:"attachment"`
							} `json:"node"`
						} `json:"edges"`
					} `json:"messages"`
				}
				e.do(t, ben, `query($c: ID!) { messages(conversationId: $c, last: 1) { edges { node { attachment { `+attachmentFields+` } } } } }`,
					map[string]any{"c": conv.ID}).ok(t, &hist)
				h := hist.Messages.Edges[0].Node.Attachment
				if h == nil || !strings.Contains(h.URL, "sig=") {
					t.Fatalf("history: %+v", h)
				}
				if resp, b := e.fetch(t, h.URL); resp.StatusCode != 200 || !bytes.Equal(b, stored) {
					t.Fatalf("GET from history: %d", resp.StatusCode)
				}
				if resp, _ := e.fetch(t, strings.Replace(h.URL, "sig=", "sig=x", 1)); resp.StatusCode != http.StatusForbidden {
					t.Fatalf("tampered URL: %d", resp.StatusCode)
				}

				// Sent once: again is refused, and so is sending it elsewhere.
				apiFailsOn(t, e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{
					"conversationId": conv.ID, "messageType": "IMAGE", "attachment": map[string]any{"id": *a.ID}}}),
					"BAD_USER_INPUT", "input.attachment.id")
			})

			t.Run("deleting the message deletes its files", func(t *testing.T) {
				a := e.uploadOK(t, ana, conv.ID, "kitchen.jpg", mediatest.JPEGWithGPS(320, 240, 1))
				var sent struct {
					M struct {
						ID         string      `json:"id"`
						Attachment *attachment `json:"attachment"`
					} `json:"sendMessage"`
				}
				e.do(t, ana, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id attachment { `+attachmentFields+` } } }`,
					map[string]any{"in": map[string]any{"conversationId": conv.ID, "messageType": "IMAGE", "attachment": map[string]any{"id": *a.ID}}}).ok(t, &sent)
				urls := []string{sent.M.Attachment.URL, *sent.M.Attachment.ThumbnailURL}
				for _, u := range urls {
					if resp, _ := e.fetch(t, u); resp.StatusCode != http.StatusOK {
						t.Fatalf("GET %s before the deletion: %d", u, resp.StatusCode)
					}
				}
				e.do(t, ana, `mutation($m: ID!) { deleteMessage(messageId: $m) { id attachment { url } } }`,
					map[string]any{"m": sent.M.ID}).ok(t, nil)
				// URLs signed before the deletion, still unexpired, find
				// nothing: the file and its thumbnail are gone.
				for _, u := range urls {
					if resp, _ := e.fetch(t, u); resp.StatusCode != http.StatusNotFound {
						t.Fatalf("GET %s after the deletion: %d, want 404", u, resp.StatusCode)
					}
				}
				// Deleting again changes nothing and fails nothing.
				e.do(t, ana, `mutation($m: ID!) { deleteMessage(messageId: $m) { id } }`, map[string]any{"m": sent.M.ID}).ok(t, nil)
			})

			t.Run("an upload of another conversation is refused", func(t *testing.T) {
				a := e.uploadOK(t, ana, other.ID, "plan.pdf", []byte("%PDF-1.4\n%%EOF\n"))
				apiFailsOn(t, e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{
					"conversationId": conv.ID, "messageType": "FILE", "attachment": map[string]any{"id": *a.ID}}}),
					"BAD_USER_INPUT", "input.attachment.id")
				apiFailsOn(t, e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{
					"conversationId": conv.ID, "messageType": "FILE", "attachment": map[string]any{"id": *a.ID, "url": "https://x.test/a.pdf"}}}),
					"BAD_USER_INPUT", "input.attachment")
			})

			t.Run("refusals", func(t *testing.T) {
				for _, tc := range []struct {
					name, token, conv, filename string
					data                        []byte
					code, field                 string
				}{
					{"stranger", carl, conv.ID, "a.txt", []byte("hi"), "NOT_FOUND", ""},
					{"decompression bomb", ana, conv.ID, "bomb.png", mediatest.PNGBomb(100000, 100000), "BAD_USER_INPUT", "file"},
					{"jpeg bomb", ana, conv.ID, "bomb.jpg", mediatest.JPEGBomb(60000, 60000), "BAD_USER_INPUT", "file"},
					{"html", ana, conv.ID, "page.txt", []byte("<!doctype html><html><script>alert(document.cookie)</script></html>"), "BAD_USER_INPUT", "file"},
					{"svg", ana, conv.ID, "pic.png", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "BAD_USER_INPUT", "file"},
					{"executable", ana, conv.ID, "x.pdf", []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"), "BAD_USER_INPUT", "file"},
				} {
					_, r := e.upload(t, uploadRequest{token: tc.token, conv: tc.conv, filename: tc.filename, body: bytes.NewReader(tc.data), csrf: "1"})
					if tc.field != "" {
						apiFailsOn(t, r, tc.code, tc.field)
					} else if r.code() != tc.code {
						t.Fatalf("%s: %+v, want %s", tc.name, r.Errors, tc.code)
					}
				}
			})

			t.Run("text with markup later on is served so that it cannot run", func(t *testing.T) {
				text := strings.Repeat("notes from the visit\n", 40) + "<script>alert(document.cookie)</script>\n"
				a := e.uploadOK(t, ana, conv.ID, "notes.html", []byte(text))
				if *a.MimeType != "text/plain; charset=utf-8" || *a.FileName != "notes.html.txt" || a.ThumbnailURL != nil || a.Width != nil {
					t.Fatalf("text upload: %+v", a)
				}
				resp, b := e.fetch(t, a.URL)
				if resp.StatusCode != 200 || string(b) != text || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
					resp.Header.Get("Content-Disposition") != "attachment; filename=notes.html.txt" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatalf("GET text: %d %v", resp.StatusCode, resp.Header)
				}
			})

			t.Run("a multipart request without the CSRF header gets 400", func(t *testing.T) {
				status, r := e.upload(t, uploadRequest{token: ana, conv: conv.ID, filename: "a.txt", body: strings.NewReader("hi")})
				if status != http.StatusBadRequest || len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "Apollo-Require-Preflight") {
					t.Fatalf("%d %+v", status, r)
				}
			})

			t.Run("a file over the limit is refused without reading it all", func(t *testing.T) {
				// Its Content-Length says so: 413 before any of it is read.
				body := &countingReader{r: &zeros{n: 64 << 20}}
				status, _ := e.upload(t, uploadRequest{token: ana, conv: conv.ID, filename: "big.txt", body: body, csrf: "1", contentLength: 64<<20 + 1024})
				if status != http.StatusRequestEntityTooLarge {
					t.Fatalf("declared 64 MiB: status %d, want 413", status)
				}
				// Chunked: found mid-stream, BAD_USER_INPUT naming file,
				// and the server stops reading a little past the limit.
				body = &countingReader{r: &zeros{n: 64 << 20}}
				_, r := e.upload(t, uploadRequest{token: ana, conv: conv.ID, filename: "big.txt", body: body, csrf: "1"})
				apiFailsOn(t, r, "BAD_USER_INPUT", "file")
				if body.n > uploadLimit+8<<20 {
					t.Fatalf("the client sent %d bytes of a 64 MiB body against a %d-byte limit", body.n, uploadLimit)
				}
				t.Logf("sent %d bytes of 64 MiB before the refusal", body.n)
			})

			t.Run("an upload never sent is swept after a day", func(t *testing.T) {
				a := e.uploadOK(t, ana, conv.ID, "later.jpg", mediatest.JPEGWithGPS(32, 32, 1))
				ctx := context.Background()
				if n, err := e.app.resolver.SweepUploads(ctx); err != nil || n != 0 {
					t.Fatalf("fresh sweep: %d, %v", n, err)
				}
				// A day passes for this upload.
				if _, err := e.app.db.NewUpdate().Table("attachments").Set("created_at = ?", time.Now().UTC().Add(-25*time.Hour)).
					Where("id = ?", *a.ID).Exec(ctx); err != nil {
					t.Fatal(err)
				}
				if n, err := e.app.resolver.SweepUploads(ctx); err != nil || n != 1 {
					t.Fatalf("sweep after a day: %d, %v", n, err)
				}
				if resp, _ := e.fetch(t, a.URL); resp.StatusCode != http.StatusNotFound {
					t.Fatalf("GET a swept file: %d", resp.StatusCode)
				}
				if resp, _ := e.fetch(t, *a.ThumbnailURL); resp.StatusCode != http.StatusNotFound {
					t.Fatalf("GET a swept thumbnail: %d", resp.StatusCode)
				}
				apiFailsOn(t, e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{
					"conversationId": conv.ID, "messageType": "IMAGE", "attachment": map[string]any{"id": *a.ID}}}),
					"BAD_USER_INPUT", "input.attachment.id")
			})
		})
	}
}

// TestUploadRate: past JOBCHAT_UPLOAD_RATE uploads at once, RATE_LIMITED
// with retryAfterMs; after that long, an upload goes through. 60 a minute
// gives a token a second, so the wait is short.
func TestUploadRate(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_UPLOAD_RATE": "60"})
			ana := userToken(t, "ana", "Ana")
			conv := e.openJob(t, "job-1", "ana", "ben", "")
			var r gqlResponse
			ok := 0
			for range 200 {
				_, r = e.upload(t, uploadRequest{token: ana, conv: conv.ID, filename: "a.txt", body: strings.NewReader("hi"), csrf: "1"})
				if len(r.Errors) > 0 {
					break
				}
				ok++
			}
			r.fails(t, "RATE_LIMITED", "uploading too fast")
			ms, _ := r.Errors[0].Extensions["retryAfterMs"].(float64)
			if ok < 60 || ms <= 0 || ms > 1000 {
				t.Fatalf("after %d uploads: retryAfterMs %v", ok, r.Errors[0].Extensions)
			}
			time.Sleep(time.Duration(ms) * time.Millisecond)
			if _, r := e.upload(t, uploadRequest{token: ana, conv: conv.ID, filename: "a.txt", body: strings.NewReader("hi"), csrf: "1"}); len(r.Errors) > 0 {
				t.Fatalf("after retryAfterMs: %+v", r.Errors)
			}
		})
	}
}
