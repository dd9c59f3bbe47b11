package media

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// JPEG qualities: the stored copy of a photo, and its thumbnail.
const (
	photoQuality = 90
	thumbQuality = 80
)

// processImage checks an image's dimensions from its header, then writes
// its copy without metadata and its thumbnail. JPEGs are decoded, turned
// upright by their EXIF orientation and encoded again, which leaves every
// metadata segment (and anything hidden after the image) behind; PNG, GIF
// and WebP files are copied block by block without their metadata blocks,
// losslessly, since re-encoding them would cost much and gain nothing.
func (p *Processor) processImage(ctx context.Context, raw *os.File, size int64, k kind) (res *Result, err error) {
	cfg, format, err := image.DecodeConfig(io.NewSectionReader(raw, 0, size))
	if err != nil || format != k.image {
		return nil, refuse("is not a readable %s image", k.ext[1:])
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 {
		return nil, refuse("is an image without pixels")
	}
	if w > p.cfg.MaxSide || h > p.cfg.MaxSide || int64(w)*int64(h) > p.cfg.MaxPixels {
		return nil, refuse("is %d×%d pixels; images may have at most %d pixels a side and %d in all",
			w, h, p.cfg.MaxSide, p.cfg.MaxPixels)
	}

	// Decoding takes memory in proportion to the pixels: bound how many
	// images are decoded at once.
	select {
	case p.decode <- struct{}{}:
		defer func() { <-p.decode }()
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to decode image: %w", ctx.Err())
	}

	out, err := p.tempFile("jobchat-image-*" + k.ext)
	if err != nil {
		return nil, err
	}
	made := &Result{ContentType: k.contentType, Ext: k.ext, File: out}
	defer func() {
		if err != nil {
			_ = made.Close()
		}
	}()
	res = made

	var img image.Image // the image as shown, for the thumbnail
	animated := false   // an animated WebP, which x/image/webp cannot decode
	switch k.image {
	case "jpeg":
		img, err = p.reencodeJPEG(raw, size, out)
	case "png":
		err = stripPNG(out, io.NewSectionReader(raw, 0, size))
	case "gif":
		err = stripGIF(out, io.NewSectionReader(raw, 0, size))
	case "webp":
		animated, err = stripWebP(out, io.NewSectionReader(raw, 0, size))
		if err == nil && animated {
			res.Width, res.Height = w, h // from its header; no thumbnail
		}
	}
	if err != nil {
		return nil, err
	}
	if res.Size, err = out.Seek(0, io.SeekEnd); err != nil {
		return nil, fmt.Errorf("measure image: %w", err)
	}
	if img == nil && !animated {
		// Decode what will be kept, which proves it is whole.
		if img, err = decodeFile(out, k.image); err != nil {
			return nil, err
		}
	}
	if img != nil {
		b := img.Bounds()
		res.Width, res.Height = b.Dx(), b.Dy()
		if res.Thumb, res.ThumbSize, err = p.writeThumb(img); err != nil {
			return nil, err
		}
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind image: %w", err)
	}
	return res, nil
}

// decodeFile decodes the (stripped) image in f; for a GIF, its first frame.
func decodeFile(f *os.File, format string) (image.Image, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind image: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var (
		img image.Image
		err error
	)
	switch format {
	case "png":
		img, err = png.Decode(r)
	case "gif":
		img, err = gif.Decode(r)
	case "webp":
		img, err = webp.Decode(r)
	default:
		return nil, fmt.Errorf("decode %s: not a format kept losslessly", format)
	}
	if err != nil {
		return nil, refuse("is a damaged %s image", format)
	}
	return img, nil
}

// reencodeJPEG decodes a JPEG, turns it upright and writes it to out
// afresh: what it writes holds the pixels and nothing else.
func (p *Processor) reencodeJPEG(raw *os.File, size int64, out *os.File) (image.Image, error) {
	orient := jpegOrientation(io.NewSectionReader(raw, 0, size))
	img, err := jpeg.Decode(bufio.NewReaderSize(io.NewSectionReader(raw, 0, size), 64<<10))
	if err != nil {
		return nil, refuse("is a damaged JPEG image")
	}
	img = upright(img, orient)
	bw := bufio.NewWriterSize(out, 64<<10)
	if err := jpeg.Encode(bw, img, &jpeg.Options{Quality: photoQuality}); err != nil {
		return nil, fmt.Errorf("encode JPEG: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write JPEG: %w", err)
	}
	return img, nil
}

// writeThumb scales img to fit ThumbSide (never up) over white, since
// JPEG has no transparency, and writes it as a JPEG file.
func (p *Processor) writeThumb(img image.Image) (*os.File, int64, error) {
	b := img.Bounds()
	tw, th := fit(b.Dx(), b.Dy(), p.cfg.ThumbSide)
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	// BiLinear widens its kernel when shrinking, so a large photo
	// averages into its thumbnail instead of aliasing; CatmullRom is
	// barely sharper at this size and costs twice as much.
	draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Over, nil)

	f, err := p.tempFile("jobchat-thumb-*.jpg")
	if err != nil {
		return nil, 0, err
	}
	bw := bufio.NewWriter(f)
	err = jpeg.Encode(bw, dst, &jpeg.Options{Quality: thumbQuality})
	if err == nil {
		err = bw.Flush()
	}
	var n int64
	if err == nil {
		n, err = f.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = discard(f)
		return nil, 0, fmt.Errorf("write thumbnail: %w", err)
	}
	return f, n, nil
}

// fit scales w×h to fit a square of side, keeping the aspect ratio and at
// least one pixel a side; an image that fits already keeps its size.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, int(int64(h)*int64(side)/int64(w)))
	}
	return max(1, int(int64(w)*int64(side)/int64(h))), side
}

// upright applies an EXIF orientation (1 to 8) to img, so that it reads
// as the camera meant without the tag.
func upright(img image.Image, orient int) image.Image {
	if orient < 2 || orient > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	src := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(src, src.Bounds(), img, b.Min, draw.Src)
	dw, dh := w, h
	if orient >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		row := src.Pix[y*src.Stride : y*src.Stride+4*w]
		for x := range w {
			var dx, dy int
			switch orient {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // upside down
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored upside down
				dx, dy = x, h-1-y
			case 5: // mirrored, turned a quarter counter-clockwise
				dx, dy = y, x
			case 6: // turned a quarter clockwise
				dx, dy = h-1-y, x
			case 7: // mirrored, turned a quarter clockwise
				dx, dy = h-1-y, w-1-x
			case 8: // turned a quarter counter-clockwise
				dx, dy = y, w-1-x
			}
			o := dy*dst.Stride + 4*dx
			copy(dst.Pix[o:o+4], row[4*x:4*x+4])
		}
	}
	return dst
}
