package files

import (
	"fmt"
	"net/url"
	"strings"
)

// maxKeyLen bounds a key well under every file system's path limit and
// S3's 1,024 bytes.
const maxKeyLen = 512

// checkKey accepts a clean relative path of non-empty segments, so that a
// key can never name something outside a store's root, in a file system or
// in a URL: no "..", ".", empty segments, leading slash, backslash or
// control characters.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w: length %d", ErrBadKey, len(key))
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	return nil
}

// escapeKey makes the path of a key's URL, segment by segment, so that
// "/" stays a separator and everything else survives the round trip.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
