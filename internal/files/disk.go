package files

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DiskStore keeps objects as files under a directory: objects/<key>, each
// starting with a short header that holds its content type, so that an
// object and its type appear together in one rename. It suits one
// instance; several need S3Store.
type DiskStore struct {
	objects, tmp string
}

var _ Store = (*DiskStore)(nil)

// diskMagic starts every object file; the content type follows on the same
// line.
const diskMagic = "jobchat-file/1 "

// maxHeader bounds the header line a reader accepts.
const maxHeader = 512

// NewDiskStore makes (if needed) and uses dir, typically <data dir>/files.
func NewDiskStore(dir string) (*DiskStore, error) {
	s := &DiskStore{objects: filepath.Join(dir, "objects"), tmp: filepath.Join(dir, "tmp")}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("disk store: %w", err)
		}
	}
	return s, nil
}

func (s *DiskStore) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.objects, filepath.FromSlash(key)), nil
}

// Put writes to a temporary file and renames it into place once all size
// bytes are on disk, so a reader never sees half an object.
func (s *DiskStore) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (err error) {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if strings.ContainsAny(contentType, "\r\n") || len(contentType) > maxHeader-len(diskMagic)-1 {
		return fmt.Errorf("put %s: bad content type %q", key, contentType)
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.WriteString(diskMagic + contentType + "\n"); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := copyExactly(ctx, f, r, size); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Open reads the header and hands out the rest of the file as the object.
func (s *DiskStore) Open(ctx context.Context, key string) (Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(f, maxHeader), maxHeader).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, diskMagic) {
		f.Close()
		return nil, fmt.Errorf("open %s: not an object file", key)
	}
	hdr := int64(len(line))
	return &diskObject{
		SectionReader: io.NewSectionReader(f, hdr, fi.Size()-hdr),
		f:             f,
		contentType:   strings.TrimSuffix(strings.TrimPrefix(line, diskMagic), "\n"),
		modTime:       fi.ModTime(),
	}, nil
}

// Delete removes the object's file; an absent one is fine.
func (s *DiskStore) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Presign returns "": the disk has no URL of its own, Handler streams.
func (s *DiskStore) Presign(ctx context.Context, key string, ttl time.Duration, disposition string) (string, error) {
	return "", checkKey(key)
}

type diskObject struct {
	*io.SectionReader
	f           *os.File
	contentType string
	modTime     time.Time
}

func (o *diskObject) Close() error        { return o.f.Close() }
func (o *diskObject) ContentType() string { return o.contentType }
func (o *diskObject) ModTime() time.Time  { return o.modTime }
