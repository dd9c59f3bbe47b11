package files

import (
	"context"
	"fmt"
	"io"
)

// copyExactly copies size bytes from r to w and fails if r holds fewer or
// more, checking ctx between chunks so a cancelled upload stops.
func copyExactly(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	n, err := io.Copy(w, &ctxReader{ctx: ctx, r: io.LimitReader(r, size)})
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: got %d of %d bytes", io.ErrUnexpectedEOF, n, size)
	}
	return checkDrained(r, size)
}

// checkDrained fails if r has a byte past the size it was declared with.
func checkDrained(r io.Reader, size int64) error {
	var b [1]byte
	for range 100 {
		n, err := r.Read(b[:])
		if n > 0 {
			return fmt.Errorf("reader holds more than its size of %d bytes", size)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// ctxReader ends a read with ctx's error once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
