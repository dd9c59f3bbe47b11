// Package media decides what an uploaded file is and makes it fit to keep.
// It reads an upload once, as a stream, into a temporary file (never the
// whole of it into memory), stopping at the size limit; sniffs its type
// from the bytes against an allowlist (raster images, PDF, Word, Excel and
// PowerPoint documents, UTF-8 plain text), never trusting the client's
// word; and for images checks the pixel dimensions from the header before
// anything is decoded (a decompression bomb is refused), strips the
// metadata (EXIF with its GPS position, XMP, comments) and makes a JPEG
// thumbnail.
//
// It knows nothing of storage, GraphQL or who may upload what. It imports
// the standard library and golang.org/x/image (WebP decoding, scaling).
package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
)

// Config sets the limits. Its zero value means the defaults.
type Config struct {
	// MaxBytes caps an upload's size. Zero: 25 MiB.
	MaxBytes int64
	// MaxPixels caps an image's width times height and MaxSide either of
	// them, read from its header before decoding. Zero: 50 million
	// pixels, 10,000 a side.
	MaxPixels int64
	MaxSide   int
	// ThumbSide is the longest side of a thumbnail. Zero: 320.
	ThumbSide int
	// TempDir holds the files being processed. Empty: os.TempDir().
	TempDir string
	// Decoders caps the images decoded at once: a large one takes
	// hundreds of MiB while it is processed. Zero: GOMAXPROCS.
	Decoders int
}

// The defaults of Config.
const (
	DefaultMaxBytes  = 25 << 20
	DefaultMaxPixels = 50_000_000
	DefaultMaxSide   = 10_000
	DefaultThumbSide = 320
)

// Processor turns uploads into Results. It is safe for concurrent use.
type Processor struct {
	cfg    Config
	decode chan struct{} // a semaphore over image decoding
}

// New returns a Processor with cfg's limits.
func New(cfg Config) *Processor {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = DefaultMaxPixels
	}
	if cfg.MaxSide <= 0 {
		cfg.MaxSide = DefaultMaxSide
	}
	if cfg.ThumbSide <= 0 {
		cfg.ThumbSide = DefaultThumbSide
	}
	if cfg.Decoders <= 0 {
		cfg.Decoders = runtime.GOMAXPROCS(0)
	}
	return &Processor{cfg: cfg, decode: make(chan struct{}, cfg.Decoders)}
}

// Refused is an upload the rules turn away. Reason is for the person who
// sent it and completes a sentence about the file ("is empty").
type Refused struct{ Reason string }

func (e *Refused) Error() string { return "file " + e.Reason }

func refuse(format string, args ...any) error {
	return &Refused{Reason: fmt.Sprintf(format, args...)}
}

// Result is a processed upload, held in temporary files until Close.
type Result struct {
	// ContentType is the sniffed type, as it is to be served
	// ("image/jpeg", "text/plain; charset=utf-8").
	ContentType string
	// Ext is the usual file name extension of the type (".jpg").
	Ext string
	// Width and Height are an image's pixel dimensions as it is shown
	// (after its EXIF orientation); zero for other files.
	Width, Height int
	// File holds the bytes to keep, positioned at the start: the upload
	// itself, or for an image its copy without metadata. Size is its
	// length.
	File *os.File
	Size int64
	// Thumb is an image's JPEG thumbnail at most ThumbSide pixels a side,
	// positioned at the start; nil for other files and for images that
	// cannot be decoded here (animated WebP).
	Thumb     *os.File
	ThumbSize int64
}

// IsImage reports whether the result is a raster image.
func (r *Result) IsImage() bool { return r.Width > 0 }

// Close removes the temporary files.
func (r *Result) Close() error {
	var errs []error
	for _, f := range []*os.File{r.File, r.Thumb} {
		if f != nil {
			errs = append(errs, discard(f))
		}
	}
	return errors.Join(errs...)
}

// discard closes and removes a temporary file.
func discard(f *os.File) error {
	err := f.Close()
	if rmErr := os.Remove(f.Name()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}

// Process reads the upload from r to its end and returns what to keep, or
// a *Refused when the rules turn it away: larger than MaxBytes (found
// while reading: at most MaxBytes+1 bytes are read), empty, of a type
// outside the allowlist, an image too large or that does not decode. r
// may also fail with *http.MaxBytesError (a transport's own bound), which
// is reported as too large too. The caller closes the Result.
func (p *Processor) Process(ctx context.Context, r io.Reader) (res *Result, err error) {
	raw, size, err := p.spool(ctx, r)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil || res.File != raw {
			_ = discard(raw)
		}
	}()
	k, err := sniff(raw, size)
	if err != nil {
		return nil, err
	}
	if k.image == "" {
		if _, err := raw.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("rewind upload: %w", err)
		}
		return &Result{ContentType: k.contentType, Ext: k.ext, File: raw, Size: size}, nil
	}
	return p.processImage(ctx, raw, size, k)
}

// spool copies the upload into a temporary file, refusing it once it
// passes the limit.
func (p *Processor) spool(ctx context.Context, r io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(p.cfg.TempDir, "jobchat-upload-*")
	if err != nil {
		return nil, 0, fmt.Errorf("create temporary file: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	n, err := io.Copy(w, io.LimitReader(ctxReader{ctx, r}, p.cfg.MaxBytes+1))
	if err == nil {
		err = w.Flush()
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || (err == nil && n > p.cfg.MaxBytes):
		err = refuse("must be at most %d bytes", p.cfg.MaxBytes)
	case err != nil:
		err = fmt.Errorf("read upload: %w", err)
	case n == 0:
		err = refuse("is empty")
	}
	if err != nil {
		_ = discard(f)
		return nil, 0, err
	}
	return f, n, nil
}

// ctxReader stops reading once ctx is done, so that an abandoned request
// does not keep a slow upload going.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tempFile makes another temporary file beside the upload's.
func (p *Processor) tempFile(pattern string) (*os.File, error) {
	f, err := os.CreateTemp(p.cfg.TempDir, pattern)
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	return f, nil
}
