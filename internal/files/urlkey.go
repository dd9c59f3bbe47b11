package files

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// urlKeyFile is the generated URL signing key's file in the data dir.
const urlKeyFile = "file-url.key"

// LoadOrCreateURLKey returns the URL signing key kept in dir, making one
// on first use; created says it was made now. It is for one instance (or
// several sharing the dir): instances on separate disks each make their
// own, and then refuse each other's URLs, so they need JOBCHAT_FILE_URL_KEY.
func LoadOrCreateURLKey(dir string) (key []byte, created bool, err error) {
	path := filepath.Join(dir, urlKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if len(k) < 32 {
			return nil, false, fmt.Errorf("file URL key %s is shorter than 32 characters", path)
		}
		return []byte(k), false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("read file URL key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data dir: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, false, fmt.Errorf("generate file URL key: %w", err)
	}
	k := hex.EncodeToString(raw[:])
	// Written whole to a temporary file and linked into place, so that a
	// process starting at the same time reads all of it or none, and the
	// first link wins.
	tmp, err := os.CreateTemp(dir, urlKeyFile+".*")
	if err != nil {
		return nil, false, fmt.Errorf("write file URL key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(k + "\n"); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("write file URL key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("write file URL key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateURLKey(dir)
		}
		return nil, false, fmt.Errorf("write file URL key: %w", err)
	}
	return []byte(k), true, nil
}
