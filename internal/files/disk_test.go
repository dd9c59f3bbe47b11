package files

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiskStore(t *testing.T) {
	s, err := NewDiskStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, s, false)
}

// TestDiskStoreStaysInItsDir: nothing a key can say writes outside the
// store's directory, and failed puts leave no temporary files behind.
func TestDiskStoreStaysInItsDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "files")
	s, err := NewDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"../escape", "a/../../escape", "/tmp/escape"} {
		_ = s.Put(ctx, key, strings.NewReader(""), 0, "text/plain")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 || entries[0].Name() != "files" {
		t.Errorf("the parent holds %v; want only files/", entries)
	}
	mustPut(t, s, "ok/key", []byte("x"), "text/plain")
	_ = s.Put(ctx, "short", strings.NewReader("abc"), 10, "text/plain")
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp holds %d files after the puts", len(tmp))
	}
}
