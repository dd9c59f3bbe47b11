// Package files keeps the bytes of uploaded attachments and serves them.
//
// A Store holds objects under opaque keys chosen by the caller (the
// resolvers): DiskStore under the data dir for one instance, S3Store in an
// S3-compatible bucket for several. A Signer makes the expiring, HMAC-signed
// /files/{key} URLs that an <img> tag can load without a bearer token, and
// Handler serves them. The package knows nothing of GraphQL, SQL or who may
// see what: whoever hands out a signed URL has decided that. It imports the
// standard library, zerolog and the minio-go S3 client only.
package files

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Store.Open (wrapped) when no object has the key.
var ErrNotFound = errors.New("files: not found")

// ErrBadKey is returned (wrapped) for a key that is not a clean relative
// path: empty, absolute, with "..", "." or empty segments, backslashes or
// control characters.
var ErrBadKey = errors.New("files: bad key")

// Store keeps uploaded bytes under opaque keys.
//
// Keys are path-like strings ("<conversationId>/<uuid>"); both stores
// refuse keys that could escape their root (see ErrBadKey).
type Store interface {
	// Put stores exactly size bytes from r under key with the content
	// type; it never buffers the whole file in memory. A reader that ends
	// early or holds more than size bytes is an error and leaves nothing
	// under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open returns the object for reading, with Range support
	// (io.ReadSeeker) and its size; ErrNotFound if absent.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the object; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Presign returns a time-limited direct URL (S3) or "" when the store
	// cannot (disk). disposition, when not empty, is the
	// Content-Disposition the object store answers with.
	Presign(ctx context.Context, key string, ttl time.Duration, disposition string) (string, error)
}

// Object is one stored file, open for reading. Close it.
type Object interface {
	io.ReadSeekCloser
	Size() int64
	ContentType() string
	ModTime() time.Time
}
