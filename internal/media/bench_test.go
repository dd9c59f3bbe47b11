package media_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"testing"

	"github.com/jobchat/jobchat/internal/media"
	"github.com/jobchat/jobchat/internal/media/mediatest"
)

// BenchmarkProcessPhoto: what an upload of a phone photo costs the server
// besides storing it: a 12-megapixel JPEG (4000×3000, turned by its EXIF
// orientation) spooled, sniffed, decoded, turned upright, encoded again
// without metadata and thumbnailed.
func BenchmarkProcessPhoto(b *testing.B) {
	var pic bytes.Buffer
	if err := jpeg.Encode(&pic, mediatest.Gradient(4000, 3000), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	photo := mediatest.WithEXIF(pic.Bytes(), 6)
	p := media.New(media.Config{TempDir: b.TempDir()})
	b.SetBytes(int64(len(photo)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Process(context.Background(), bytes.NewReader(photo))
		if err != nil {
			b.Fatal(err)
		}
		if res.Width != 3000 || res.Thumb == nil {
			b.Fatalf("%d×%d", res.Width, res.Height)
		}
		_ = res.Close()
	}
}
