package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"testing"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/files"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// getFile fetches a path of e's server with a plain HTTP client, as an
// <img> tag or a download would: no token.
func getFile(tb testing.TB, e *env, path string) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

func putFile(tb testing.TB, e *env, key string, data []byte, ctype string) {
	tb.Helper()
	if err := e.app.files.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), ctype); err != nil {
		tb.Fatal(err)
	}
}

// TestFilesOnDisk: by default attachments live in the data dir and the
// server serves them at /files/ through URLs signed with a key generated
// in the data dir, which a restart (another app on the same dir) keeps.
func TestFilesOnDisk(t *testing.T) {
	dbc := dbtest.Config(t, dbtest.SQLite)
	e := newEnvOnDB(t, dbc, nil)
	if _, ok := e.app.files.(*files.DiskStore); !ok {
		t.Fatalf("store is %T; want the disk", e.app.files)
	}
	data := []byte("%PDF-1.4 a quote for the sink")
	putFile(t, e, "conv-1/quote", data, "application/pdf")
	signed := e.app.fileURLs.URL("conv-1/quote")

	resp, body := getFile(t, e, signed)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET %s: %s %q", signed, resp.Status, body)
	}
	if resp.Header.Get("Content-Disposition") != "attachment; filename=quote" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
	if resp, _ := getFile(t, e, "/files/conv-1/quote"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned: %s; want 403", resp.Status)
	}

	again := newEnvOnDB(t, dbc, nil)
	if resp, body := getFile(t, again, signed); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("after a restart on the same data dir: %s %q", resp.Status, body)
	}
}

// TestFilesOnS3: with JOBCHAT_S3_ENDPOINT and a shared JOBCHAT_FILE_URL_KEY,
// two instances with data dirs of their own serve each other's uploads,
// streamed or, with JOBCHAT_S3_REDIRECT, by redirect to the object store.
func TestFilesOnS3(t *testing.T) {
	srv := testsvc.S3Server(t)
	vars := map[string]string{
		"JOBCHAT_S3_ENDPOINT":   srv.Endpoint,
		"JOBCHAT_S3_ACCESS_KEY": srv.AccessKey,
		"JOBCHAT_S3_SECRET_KEY": srv.SecretKey,
		"JOBCHAT_S3_BUCKET":     "jobchat-cmd-test",
		"JOBCHAT_S3_PATH_STYLE": "true",
		"JOBCHAT_FILE_URL_KEY":  "shared-file-url-key-0123456789abcdef",
	}
	dbc := dbtest.Config(t, dbtest.SQLite)
	one := newEnvOnDB(t, dbc, vars)
	vars["JOBCHAT_DATA_DIR"] = t.TempDir()
	vars["JOBCHAT_S3_REDIRECT"] = "true"
	two := newEnvOnDB(t, dbc, vars)
	if _, ok := one.app.files.(*files.S3Store); !ok {
		t.Fatalf("store is %T; want S3", one.app.files)
	}

	var b [8]byte
	_, _ = rand.Read(b[:])
	key := "conv-" + hex.EncodeToString(b[:]) + "/page"
	html := []byte("<!doctype html><script>alert(document.cookie)</script>")
	putFile(t, one, key, html, "text/html")
	t.Cleanup(func() { _ = one.app.files.Delete(context.Background(), key) })

	for _, c := range []struct {
		name        string
		serve, sign *env
	}{
		{"streamed, own URL", one, one},
		{"streamed, the other instance's URL", one, two},
		{"redirected, own URL", two, two},
		{"redirected, the other instance's URL", two, one},
	} {
		resp, body := getFile(t, c.serve, c.sign.app.fileURLs.URL(key))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, html) {
			t.Errorf("%s: %s %q", c.name, resp.Status, body)
			continue
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=page" {
			t.Errorf("%s: HTML served with Content-Disposition %q", c.name, cd)
		}
	}
}
