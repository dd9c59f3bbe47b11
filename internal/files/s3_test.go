package files

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/jobchat/jobchat/internal/testsvc"
)

// newTestS3Store returns an S3Store on a bucket of its own in the test
// S3 server (testsvc), made by NewS3Store itself and removed, with its
// objects, when the test ends.
func newTestS3Store(tb testing.TB) *S3Store {
	tb.Helper()
	srv := testsvc.S3Server(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := "jobchat-test-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	s, err := NewS3Store(ctx, S3Config{
		Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Region: "us-east-1", PathStyle: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for obj := range s.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err == nil {
				_ = s.client.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{})
			}
		}
		if err := s.client.RemoveBucket(ctx, bucket); err != nil {
			tb.Logf("remove bucket %s: %v", bucket, err)
		}
	})
	return s
}

// TestS3Store runs the store conformance suite against the real
// S3-compatible server CI starts (.ci/s3.sh).
func TestS3Store(t *testing.T) {
	testStore(t, newTestS3Store(t), true)
}

// TestS3StoreOpensExistingBucket: a second store on the same bucket (a
// second instance) starts without making it again and sees the first's
// objects.
func TestS3StoreOpensExistingBucket(t *testing.T) {
	first := newTestS3Store(t)
	mustPut(t, first, "shared/key", []byte("hello"), "text/plain")
	srv := testsvc.S3Server(t)
	second, err := NewS3Store(context.Background(), S3Config{
		Endpoint: srv.Endpoint, Bucket: first.bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Region: "us-east-1", PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	obj := mustOpen(t, second, "shared/key")
	obj.Close()
}

func TestSplitEndpoint(t *testing.T) {
	for _, c := range []struct {
		in     string
		ssl    bool
		host   string
		secure bool
		err    bool
	}{
		{"http://127.0.0.1:8333", true, "127.0.0.1:8333", false, false},
		{"https://s3.example.com", false, "s3.example.com", true, false},
		{"s3.example.com", true, "s3.example.com", true, false},
		{"127.0.0.1:9000", false, "127.0.0.1:9000", false, false},
		{"ftp://x", true, "", false, true},
		{"http://x/path", true, "", false, true},
		{"", true, "", false, true},
	} {
		host, secure, err := splitEndpoint(c.in, c.ssl)
		if host != c.host || secure != c.secure || (err != nil) != c.err {
			t.Errorf("splitEndpoint(%q, %v) = %q, %v, %v", c.in, c.ssl, host, secure, err)
		}
	}
}
