package files

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testStore is the conformance suite every Store passes: what the
// resolvers and Handler rely on, whatever holds the bytes. presigns says
// whether the store hands out direct URLs (S3) or "" (disk).
func testStore(t *testing.T, s Store, presigns bool) {
	ctx := context.Background()
	data := randomBytes(1, 100_000)

	t.Run("put and open", func(t *testing.T) {
		before := time.Now().Add(-time.Minute)
		mustPut(t, s, "c1/put-open", data, "application/pdf")
		obj := mustOpen(t, s, "c1/put-open")
		defer obj.Close()
		if obj.Size() != int64(len(data)) || obj.ContentType() != "application/pdf" {
			t.Errorf("size %d type %q; want %d application/pdf", obj.Size(), obj.ContentType(), len(data))
		}
		if mt := obj.ModTime(); mt.Before(before) || mt.After(time.Now().Add(time.Minute)) {
			t.Errorf("mod time %v is not about now", mt)
		}
		got, err := io.ReadAll(obj)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("read %d bytes (%v); want the %d put", len(got), err, len(data))
		}
	})

	t.Run("range reads", func(t *testing.T) {
		mustPut(t, s, "c1/range", data, "application/octet-stream")
		obj := mustOpen(t, s, "c1/range")
		defer obj.Close()
		for _, c := range []struct {
			name   string
			offset int64
			whence int
			at     int64
			n      int
		}{
			{"from start", 1000, io.SeekStart, 1000, 500},
			{"backwards", 10, io.SeekStart, 10, 20},
			{"from end", -300, io.SeekEnd, int64(len(data)) - 300, 300},
			{"relative", -500, io.SeekCurrent, int64(len(data)) - 500, 100},
		} {
			pos, err := obj.Seek(c.offset, c.whence)
			if err != nil || pos != c.at {
				t.Fatalf("%s: seek to %d: %d, %v", c.name, c.at, pos, err)
			}
			buf := make([]byte, c.n)
			if _, err := io.ReadFull(obj, buf); err != nil {
				t.Fatalf("%s: read: %v", c.name, err)
			}
			if !bytes.Equal(buf, data[c.at:c.at+int64(c.n)]) {
				t.Errorf("%s: read the wrong bytes", c.name)
			}
		}
	})

	t.Run("overwrite", func(t *testing.T) {
		mustPut(t, s, "c1/over", data, "text/plain")
		mustPut(t, s, "c1/over", []byte("short"), "image/png")
		obj := mustOpen(t, s, "c1/over")
		defer obj.Close()
		got, _ := io.ReadAll(obj)
		if string(got) != "short" || obj.ContentType() != "image/png" {
			t.Errorf("after overwrite: %q %q", got, obj.ContentType())
		}
	})

	t.Run("empty object", func(t *testing.T) {
		mustPut(t, s, "c1/empty", nil, "text/plain")
		obj := mustOpen(t, s, "c1/empty")
		defer obj.Close()
		if got, err := io.ReadAll(obj); err != nil || len(got) != 0 || obj.Size() != 0 {
			t.Errorf("empty object: %q %v size %d", got, err, obj.Size())
		}
	})

	t.Run("not found", func(t *testing.T) {
		if _, err := s.Open(ctx, "c1/never-put"); !errors.Is(err, ErrNotFound) {
			t.Errorf("open of an absent key: %v; want ErrNotFound", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		mustPut(t, s, "c1/delete", data, "text/plain")
		if err := s.Delete(ctx, "c1/delete"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, "c1/delete"); !errors.Is(err, ErrNotFound) {
			t.Errorf("open after delete: %v; want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "c1/delete"); err != nil {
			t.Errorf("second delete: %v; want nil", err)
		}
	})

	t.Run("reader shorter or longer than size leaves nothing", func(t *testing.T) {
		for name, size := range map[string]int64{"short": int64(len(data)) + 1, "long": int64(len(data)) - 1} {
			key := "c1/mismatch-" + name
			if err := s.Put(ctx, key, bytes.NewReader(data), size, "text/plain"); err == nil {
				t.Errorf("%s: put succeeded", name)
			}
			if _, err := s.Open(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: open after the failed put: %v; want ErrNotFound", name, err)
			}
		}
	})

	t.Run("cancelled put", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, "c1/cancelled", bytes.NewReader(data), int64(len(data)), "text/plain"); err == nil {
			t.Error("put with a cancelled context succeeded")
		}
	})

	t.Run("bad keys", func(t *testing.T) {
		for _, key := range []string{"", "/abs", "..", "../x", "a/../../x", "a/./b", "a//b", "a/", `a\b`, "a\x00b", "a\nb", strings.Repeat("k", maxKeyLen+1)} {
			if err := s.Put(ctx, key, strings.NewReader("x"), 1, "text/plain"); !errors.Is(err, ErrBadKey) {
				t.Errorf("put %q: %v; want ErrBadKey", key, err)
			}
			if _, err := s.Open(ctx, key); !errors.Is(err, ErrBadKey) {
				t.Errorf("open %q: %v; want ErrBadKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, ErrBadKey) {
				t.Errorf("delete %q: %v; want ErrBadKey", key, err)
			}
			if _, err := s.Presign(ctx, key, time.Minute, "attachment"); !errors.Is(err, ErrBadKey) {
				t.Errorf("presign %q: %v; want ErrBadKey", key, err)
			}
		}
	})

	t.Run("keys with odd characters", func(t *testing.T) {
		key := "conv 1/ümlaut+plus%percent?q#frag.thumb.jpg"
		mustPut(t, s, key, data[:100], "image/jpeg")
		obj := mustOpen(t, s, key)
		got, _ := io.ReadAll(obj)
		obj.Close()
		if !bytes.Equal(got, data[:100]) {
			t.Errorf("read back %d bytes", len(got))
		}
	})

	t.Run("presign", func(t *testing.T) {
		mustPut(t, s, "c1/presign", data, "text/html")
		u, err := s.Presign(ctx, "c1/presign", time.Minute, `attachment; filename="x.html"`)
		if err != nil {
			t.Fatal(err)
		}
		if !presigns {
			if u != "" {
				t.Errorf("presign: %q; want \"\" from a store without direct URLs", u)
			}
			return
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET presigned: %s, %d bytes", resp.Status, len(got))
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="x.html"` {
			t.Errorf("presigned Content-Disposition %q", cd)
		}
	})

	t.Run("put streams without holding the file", func(t *testing.T) {
		// When the last of 40 MiB has been read from the reader, a store
		// that streams holds a few buffers; one that buffered the file
		// holds all of it (and the garbage the GC has not yet taken is
		// bounded by the small live heap).
		const size = 40 << 20
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		r := &heapAtEnd{r: io.LimitReader(rand.NewChaCha8([32]byte{}), size), left: size}
		if err := s.Put(ctx, "c1/big", r, size, "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		if !r.seen {
			t.Fatal("the store never read the last byte")
		}
		if grew := int64(r.heap) - int64(before.HeapAlloc); grew > size/2 {
			t.Errorf("heap grew by %d MiB while putting %d MiB", grew>>20, size>>20)
		}
		obj := mustOpen(t, s, "c1/big")
		defer obj.Close()
		if obj.Size() != size {
			t.Errorf("size %d", obj.Size())
		}
	})
}

// heapAtEnd notes the heap in use when its last byte is read.
type heapAtEnd struct {
	r    io.Reader
	left int64
	heap uint64
	seen bool
}

func (h *heapAtEnd) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.left -= int64(n)
	if h.left == 0 && !h.seen {
		h.seen = true
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.heap = m.HeapAlloc
	}
	return n, err
}

func mustPut(tb testing.TB, s Store, key string, data []byte, ctype string) {
	tb.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), ctype); err != nil {
		tb.Fatalf("put %s: %v", key, err)
	}
}

func mustOpen(tb testing.TB, s Store, key string) Object {
	tb.Helper()
	obj, err := s.Open(context.Background(), key)
	if err != nil {
		tb.Fatalf("open %s: %v", key, err)
	}
	return obj
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
