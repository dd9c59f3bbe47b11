package files

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says where an S3-compatible bucket is. Endpoint may carry a
// scheme: "http://host:port" turns TLS off and "https://host" on whatever
// UseSSL says; a bare "host:port" follows UseSSL.
type S3Config struct {
	Endpoint, Bucket, AccessKey, SecretKey, Region string
	// PathStyle addresses the bucket as host/bucket/key, which most
	// self-hosted servers need, instead of bucket.host/key.
	PathStyle bool
	UseSSL    bool
	// Transport, if not nil, carries the client's requests (tests).
	Transport http.RoundTripper
}

// S3Store keeps objects in one bucket of an S3-compatible object store, so
// that several instances share them.
type S3Store struct {
	client *minio.Client
	bucket string
}

var _ Store = (*S3Store)(nil)

// maxSinglePut is S3's limit for one PUT; below it Put streams the body in
// one request, so nothing is held in memory (a multipart upload would
// buffer whole parts of 16 MiB).
const maxSinglePut = 5 << 30

// NewS3Store connects to the object store and makes the bucket if it does
// not exist yet, so a fresh server works at once; in production the
// bucket usually exists and the keys need no right to create one.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	host, secure, err := splitEndpoint(cfg.Endpoint, cfg.UseSSL)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 store: bucket %s at %s: %w", cfg.Bucket, host, err)
	}
	if !ok {
		if err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("s3 store: make bucket %s at %s: %w", cfg.Bucket, host, err)
		}
	}
	return &S3Store{client: client, bucket: cfg.Bucket}, nil
}

// splitEndpoint turns an endpoint with or without a scheme into the host
// and TLS setting the client wants.
func splitEndpoint(endpoint string, useSSL bool) (string, bool, error) {
	if !strings.Contains(endpoint, "://") {
		if endpoint == "" {
			return "", false, fmt.Errorf("s3 store: no endpoint")
		}
		return endpoint, useSSL, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("s3 store: endpoint %q is not scheme://host[:port]", endpoint)
	}
	switch u.Scheme {
	case "http":
		return u.Host, false, nil
	case "https":
		return u.Host, true, nil
	}
	return "", false, fmt.Errorf("s3 store: endpoint %q: scheme must be http or https", endpoint)
}

// Put streams r to the bucket in one PUT. If r turns out to hold more than
// size bytes, the object is deleted again and Put fails, as DiskStore's
// does.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 || size > maxSinglePut {
		return fmt.Errorf("put %s: size %d out of range", key, size)
	}
	counted := &countReader{r: &ctxReader{ctx: ctx, r: io.LimitReader(r, size)}}
	_, err := s.client.PutObject(ctx, s.bucket, key, counted, size, minio.PutObjectOptions{
		ContentType:      contentType,
		DisableMultipart: true,
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if counted.n != size {
		return s.undo(ctx, key, fmt.Errorf("put %s: %w: got %d of %d bytes", key, io.ErrUnexpectedEOF, counted.n, size))
	}
	if err := checkDrained(r, size); err != nil {
		return s.undo(ctx, key, fmt.Errorf("put %s: %w", key, err))
	}
	return nil
}

// undo deletes what a failed Put left and returns its error.
func (s *S3Store) undo(ctx context.Context, key string, err error) error {
	if derr := s.Delete(context.WithoutCancel(ctx), key); derr != nil {
		return fmt.Errorf("%w (and %w)", err, derr)
	}
	return err
}

// Open asks for the object's metadata at once (one HEAD), so an absent key
// is ErrNotFound here rather than at the first read; the bytes are fetched
// lazily, a ranged GET for each Seek and Read that follows.
func (s *S3Store) Open(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, mapS3Error(err))
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, fmt.Errorf("open %s: %w", key, mapS3Error(err))
	}
	return &s3Object{Object: obj, info: info}, nil
}

// Delete removes the object; S3 answers an absent key with success too.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if mapS3Error(err) == ErrNotFound {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Presign returns a GET URL on the object store valid for ttl; the store
// answers it with the given Content-Disposition (S3's
// response-content-disposition), since jobchat's own headers do not go
// along with a redirect.
func (s *S3Store) Presign(ctx context.Context, key string, ttl time.Duration, disposition string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	params := url.Values{}
	if disposition != "" {
		params.Set("response-content-disposition", disposition)
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, key, ttl, params)
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", key, err)
	}
	return u.String(), nil
}

// mapS3Error turns "no such key" (and a 404 without a body, as HEAD gets)
// into ErrNotFound.
func mapS3Error(err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code == minio.NoSuchKey || (resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket) {
		return ErrNotFound
	}
	return err
}

type s3Object struct {
	*minio.Object
	info minio.ObjectInfo
}

func (o *s3Object) Size() int64         { return o.info.Size }
func (o *s3Object) ContentType() string { return o.info.ContentType }
func (o *s3Object) ModTime() time.Time  { return o.info.LastModified }
