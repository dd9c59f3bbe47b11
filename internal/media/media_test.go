package media_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/jobchat/jobchat/internal/media"
	"github.com/jobchat/jobchat/internal/media/mediatest"
)

func process(t *testing.T, p *media.Processor, data []byte) (*media.Result, []byte, error) {
	t.Helper()
	res, err := p.Process(context.Background(), bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() {
		if err := res.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	b, err := io.ReadAll(res.File)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != res.Size {
		t.Fatalf("size %d, read %d", res.Size, len(b))
	}
	return res, b, nil
}

func TestAllowlist(t *testing.T) {
	p := media.New(media.Config{})
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, mediatest.Gradient(30, 20), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data, want, refused string
	}{
		{"jpeg", string(mediatest.JPEGWithGPS(40, 30, 1)), "image/jpeg", ""},
		{"png", string(mediatest.PNG(40, 30, "hello")), "image/png", ""},
		{"gif", gifBuf.String(), "image/gif", ""},
		{"pdf", "%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "application/pdf", ""},
		{"text", "Hi Ana,\nthe sink leaks again. €40 ok?\n", "text/plain; charset=utf-8", ""},
		{"docx", string(mediatest.OOXML("word/document.xml")), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ""},
		{"xlsx", string(mediatest.OOXML("xl/workbook.xml")), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ""},
		{"pptx", string(mediatest.OOXML("ppt/presentation.xml")), "application/vnd.openxmlformats-officedocument.presentationml.presentation", ""},
		{"doc", string(mediatest.CFB("WordDocument", "1Table")), "application/msword", ""},
		{"xls", string(mediatest.CFB("Workbook")), "application/vnd.ms-excel", ""},
		{"ppt", string(mediatest.CFB("PowerPoint Document")), "application/vnd.ms-powerpoint", ""},

		{"html", "<!DOCTYPE html><html><script>alert(1)</script></html>", "", "text/html, which is not allowed"},
		{"svg", "\n  <svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>", "", "looks like markup"},
		{"xml", "<?xml version=\"1.0\"?><a/>", "", "text/xml, which is not allowed"},
		{"latin1 text", "caf\xe9 au lait", "", "not valid UTF-8"},
		{"utf-16 text", "\xfe\xff\x00h\x00i", "", "only UTF-8 text"},
		{"plain zip", string(mediatest.Zip("notes.txt")), "", "ZIP archive, which is not allowed"},
		{"docm", string(mediatest.OOXML("word/document.xml", "word/vbaProject.bin")), "", "macros"},
		{"doc with macros", string(mediatest.CFB("WordDocument", "Macros")), "", "macros"},
		{"msi", string(mediatest.CFB("\u4840\u3b3f")), "", "not a Word, Excel or PowerPoint document"},
		{"exe", "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff", "", "application/octet-stream, which is not allowed"},
		{"empty", "", "", "is empty"},
		{"png bomb", string(mediatest.PNGBomb(60000, 60000)), "", "60000×60000 pixels"},
		{"jpeg bomb", string(mediatest.JPEGBomb(65000, 1000)), "", "65000×1000 pixels"},
		{"too many pixels", string(mediatest.PNGBomb(9000, 9000)), "", "9000×9000 pixels"},
		{"truncated png", string(mediatest.PNG(40, 30, "x")[:60]), "", "damaged png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _, err := process(t, p, []byte(tc.data))
			if tc.refused != "" {
				var r *media.Refused
				if !errors.As(err, &r) || !strings.Contains(r.Error(), tc.refused) {
					t.Fatalf("err = %v, want a refusal with %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ContentType != tc.want {
				t.Fatalf("content type %q, want %q", res.ContentType, tc.want)
			}
		})
	}
}

func TestJPEGLosesEXIFAndTurnsUpright(t *testing.T) {
	p := media.New(media.Config{})
	for _, tc := range []struct {
		orientation int
		w, h        int
	}{{1, 80, 40}, {3, 80, 40}, {6, 40, 80}, {8, 40, 80}} {
		in := mediatest.JPEGWithGPS(80, 40, tc.orientation)
		if !bytes.Contains(in, []byte(mediatest.GPSMarker)) {
			t.Fatal("fixture has no GPS")
		}
		res, out, err := process(t, p, in)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte("Exif")) || bytes.Contains(out, []byte(mediatest.GPSMarker)) ||
			bytes.IndexByte(mediatest.JPEGSegments(out), 0xE1) >= 0 {
			t.Fatalf("orientation %d: stored copy keeps EXIF (segments % x)", tc.orientation, mediatest.JPEGSegments(out))
		}
		if res.Width != tc.w || res.Height != tc.h {
			t.Fatalf("orientation %d: %d×%d, want %d×%d", tc.orientation, res.Width, res.Height, tc.w, tc.h)
		}
		img, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
			t.Fatalf("stored %v", b)
		}
		// The red corner is where the camera meant it: orientation 3
		// turns it to the bottom right, 6 to the top right, 8 to the
		// bottom left.
		corner := map[int]image.Point{1: {2, 2}, 3: {tc.w - 3, tc.h - 3}, 6: {tc.w - 3, 2}, 8: {2, tc.h - 3}}[tc.orientation]
		if r, _, b, _ := img.At(corner.X, corner.Y).RGBA(); r < 0xc000 || b > 0x4000 {
			t.Fatalf("orientation %d: pixel at %v is not red", tc.orientation, corner)
		}
		thumb, err := jpeg.Decode(res.Thumb)
		if err != nil {
			t.Fatal(err)
		}
		if tb := thumb.Bounds(); tb.Dx() != tc.w || tb.Dy() != tc.h {
			t.Fatalf("thumbnail of a small image is %v, want its own size", tb)
		}
	}
}

func TestThumbnailFits(t *testing.T) {
	p := media.New(media.Config{ThumbSide: 64})
	res, out, err := process(t, p, mediatest.PNG(400, 100, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("secret")) || bytes.Contains(out, []byte("tEXt")) {
		t.Fatal("PNG text chunk kept")
	}
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		t.Fatalf("stripped PNG does not decode: %v", err)
	}
	thumb, err := jpeg.Decode(res.Thumb)
	if err != nil {
		t.Fatal(err)
	}
	if b := thumb.Bounds(); b.Dx() != 64 || b.Dy() != 16 {
		t.Fatalf("thumbnail %v, want 64×16", b)
	}
	if res.Width != 400 || res.Height != 100 {
		t.Fatalf("%d×%d", res.Width, res.Height)
	}
}

func TestGIFLosesComments(t *testing.T) {
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{paletted(), paletted()}, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	in := b.Bytes()
	// A comment extension right after the global colour table, where
	// tools put them.
	at := bytes.Index(in, []byte{0x21, 0xFF}) // the NETSCAPE2.0 loop extension
	comment := append([]byte{0x21, 0xFE, 6}, "secret"...)
	in = append(append(append([]byte{}, in[:at]...), append(comment, 0)...), in[at:]...)
	_, out, err := process(t, media.New(media.Config{}), in)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("secret")) {
		t.Fatal("GIF comment kept")
	}
	g, err := gif.DecodeAll(bytes.NewReader(out))
	if err != nil || len(g.Image) != 2 {
		t.Fatalf("stripped GIF: %v, %d frames", err, len(g.Image))
	}
}

func TestWebPLosesEXIF(t *testing.T) {
	p := media.New(media.Config{})
	for _, animated := range []bool{false, true} {
		in := mediatest.WebPWithEXIF(animated)
		res, out, err := process(t, p, in)
		if err != nil {
			t.Fatalf("animated %v: %v", animated, err)
		}
		if bytes.Contains(out, []byte("EXIF")) || bytes.Contains(out, []byte(mediatest.GPSMarker)) || out[20]&(1<<3) != 0 {
			t.Fatalf("animated %v: EXIF kept", animated)
		}
		if res.ContentType != "image/webp" || res.Width != 1 || res.Height != 1 {
			t.Fatalf("animated %v: %+v", animated, res)
		}
		if animated != (res.Thumb == nil) {
			t.Fatalf("animated %v: thumbnail %v", animated, res.Thumb)
		}
		if got := int(out[4]) | int(out[5])<<8 | int(out[6])<<16 | int(out[7])<<24; got != len(out)-8 {
			t.Fatalf("RIFF size %d, file %d", got, len(out))
		}
	}
}

func paletted() *image.Paletted {
	img := image.NewPaletted(image.Rect(0, 0, 10, 10), []color.Color{color.Black, color.White})
	img.Pix[3] = 1
	return img
}

func TestTooLarge(t *testing.T) {
	p := media.New(media.Config{MaxBytes: 1000})
	counted := &countingReader{r: strings.NewReader(strings.Repeat("a", 1<<20))}
	_, err := p.Process(context.Background(), counted)
	var r *media.Refused
	if !errors.As(err, &r) || !strings.Contains(r.Reason, "at most 1000 bytes") {
		t.Fatalf("err = %v", err)
	}
	if counted.n > 1001 {
		t.Fatalf("read %d bytes of a 1 MiB upload with a 1000-byte limit", counted.n)
	}
	// A transport's own bound counts the same.
	rec := httptest.NewRecorder()
	_, err = p.Process(context.Background(), http.MaxBytesReader(rec, io.NopCloser(strings.NewReader("abcdef")), 3))
	if !errors.As(err, &r) {
		t.Fatalf("MaxBytesError: err = %v", err)
	}
}

func TestNoTemporaryFilesLeft(t *testing.T) {
	dir := t.TempDir()
	p := media.New(media.Config{TempDir: dir})
	for _, data := range [][]byte{mediatest.JPEGWithGPS(20, 20, 6), []byte("<html>"), mediatest.PNGBomb(60000, 60000), []byte("text")} {
		res, err := p.Process(context.Background(), bytes.NewReader(data))
		if err == nil {
			_ = res.Close()
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
